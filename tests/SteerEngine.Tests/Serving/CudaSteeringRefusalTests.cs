using System.Text.Json.Nodes;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Server;

namespace SteerEngine.Tests.Serving;

/// <summary>
/// A server on the CUDA backend (on the emulator) answers 400 naming the field for a steering term its
/// kernels cannot apply (a hook other than the block output), before anything runs, and serves every
/// operation at the block output.
/// </summary>
[TestFixture]
public class CudaSteeringRefusalTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        _server = await TestServer.Start(o => new ServerOptions { Models = o.Models, Port = 0, Backend = "cuda-emu", VectorsDirectory = o.VectorsDirectory, DataDirectory = o.DataDirectory, MaxBatch = 4 });
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        if (_server is not null) await _server.DisposeAsync();
    }

    static object Chat(object steering, bool stream = false) => new
    {
        model = TestServer.Model,
        messages = new[] { new { role = "user", content = "the cat" } },
        max_tokens = 2,
        stream,
        steering = new[] { new { vector = "mood", layer = 1, multiplier = 2f }, steering },
    };

    [TestCase(false)]
    [TestCase(true)]
    public async Task Hooks_the_kernels_lack_are_400_naming_the_field(bool stream)
    {
        foreach (var (steering, param, message) in new (object, string, string)[]
        {
            (new { vector = "mood", hook = "blocks.1.attn.hook_z" }, "steering[1].hook", "hook attn_z runs on the CPU backend only"),
            (new { vector = "mood", hook = "blocks.2.attn.hook_z" }, "steering[1].hook", "hook attn_z runs on the CPU backend only"),
        })
        {
            HttpResponseMessage r = await _server.Post("/v1/chat/completions", Chat(steering, stream));
            string text = await r.Content.ReadAsStringAsync();
            Assert.That((int)r.StatusCode, Is.EqualTo(400), text);
            JsonNode e = JsonNode.Parse(text)!["error"]!;
            Assert.That((string?)e["param"], Is.EqualTo(param));
            Assert.That((string)e["message"]!, Does.Contain(message));
        }
    }

    [TestCase("add")]
    [TestCase("add_normalized")]
    [TestCase("ablate")]
    [TestCase("cap")]
    [TestCase("set")]
    public async Task Every_operation_at_the_block_output_and_at_resid_mid_is_served(string op)
    {
        await _server.PostOk("/v1/chat/completions", Chat(op switch
        {
            "cap" => new { vector = "mood", hook = "blocks.2.hook_resid_mid", op, lo = -1f, hi = 1f },
            "set" => (object)new { vector = "mood", hook = "blocks.2.hook_resid_mid", op, value = 0.5f },
            _ => new { vector = "mood", hook = "blocks.2.hook_resid_mid", op, multiplier = -2f },
        }));
        await BlockOutput(op);
    }

    async Task BlockOutput(string op) =>
        await _server.PostOk("/v1/chat/completions", Chat(op switch
        {
            "cap" => new { vector = "mood", layer = 2, op, lo = -1f, hi = 1f },
            "set" => (object)new { vector = "mood", layer = 2, op, value = 0.5f },
            _ => new { vector = "mood", layer = 2, op, multiplier = -2f },
        }));
}
