using System.Text.Json.Nodes;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Server;

namespace SteerEngine.Tests.Serving;

/// <summary>
/// A server on the CUDA backend (on the emulator) serves every operation at every hook point: the
/// block output, resid_mid, and attn_z over all heads and on one head (streamed and not).
/// </summary>
[TestFixture]
public class CudaSteeringServingTests
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

    [TestCase("add")]
    [TestCase("add_normalized")]
    [TestCase("ablate")]
    [TestCase("cap")]
    [TestCase("set")]
    public async Task Every_operation_at_every_hook_is_served(string op)
    {
        var oneHead = new JsonArray([.. Enumerable.Range(0, 32).Select(i => JsonValue.Create(i == 3 ? 1f : 0f))]); // the test model's head_dim
        foreach (var (hook, head, stream) in new (string, int?, bool)[]
        {
            ("blocks.2.hook_resid_post", null, false),
            ("blocks.2.hook_resid_mid", null, true),
            ("blocks.1.attn.hook_z", null, false),
            ("blocks.2.attn.hook_z", 3, true),
        })
        {
            var term = new JsonObject { ["vector"] = head is null ? "mood" : oneHead.DeepClone(), ["hook"] = hook, ["op"] = op };
            if (head is not null) term["head"] = head;
            switch (op)
            {
                case "cap": term["lo"] = -1f; term["hi"] = 1f; break;
                case "set": term["value"] = 0.5f; break;
                default: term["multiplier"] = -2f; break;
            }
            HttpResponseMessage r = await _server.Post("/v1/chat/completions", Chat(term, stream));
            string text = await r.Content.ReadAsStringAsync();
            Assert.That((int)r.StatusCode, Is.EqualTo(200), $"{hook}: {text}");
            Assert.That(text, stream ? Does.EndWith("data: [DONE]\n\n") : Does.Contain("\"finish_reason\""), hook);
        }
    }
}
