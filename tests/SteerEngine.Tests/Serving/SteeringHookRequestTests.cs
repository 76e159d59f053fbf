using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>
/// The <c>hook</c> and <c>head</c> fields of a served request's steering: TransformerLens names and
/// short names steer as the library does, concurrent requests at different hooks stay apart, bad
/// values are 400 naming the field.
/// </summary>
[TestFixture]
public class SteeringHookRequestTests : DemoServerFixture
{
    const string Prompt = "the cat";
    const int Tokens = 8;

    static async Task<(int Status, string Message, string? Param)> Error(HttpResponseMessage r)
    {
        string text = await r.Content.ReadAsStringAsync();
        JsonNode e = JsonNode.Parse(text)!["error"]!;
        return ((int)r.StatusCode, (string)e["message"]!, (string?)e["param"]);
    }

    static object Chat(object steering) => new
    {
        model = TestServer.Model,
        messages = new[] { new { role = "user", content = Prompt } },
        max_tokens = Tokens,
        temperature = 0f,
        steering = new[] { steering },
    };

    string Alone(SteeringAdd term) => new Generator(Lm.Model, Lm.Tokenizer).Generate(
        [new GenerationRequest(Lm.EncodePrompt(Prompt), Tokens, new SamplingOptions(0f), [term], 0, Lm.Tokenizer.EosTokenIds)])[0].Text!;

    [Test]
    public async Task Concurrent_requests_at_each_hook_equal_runs_alone()
    {
        int hd = Lm.Config.HeadDim;
        float[] head = Compare.RandomVector(new Random(3), hd, 2f);
        var cases = new (object Json, SteeringAdd Term)[]
        {
            (new { vector = "mood", hook = "blocks.2.hook_resid_post", multiplier = 6f }, new SteeringAdd(2, Server.Mood, 6f)),
            (new { vector = "mood", hook = "blocks.1.hook_resid_mid", multiplier = 6f }, new SteeringAdd(1, Server.Mood, 6f) { Hook = SteeringHook.ResidMid }),
            (new { vector = "mood", layer = 1, hook = "resid_mid", op = "set", value = 3f }, new SteeringAdd(1, Server.Mood, 1f) { Hook = SteeringHook.ResidMid, Op = SteeringOp.Set, Value = 3f }),
            (new { vector = "mood", hook = "blocks.2.attn.hook_z", multiplier = 8f }, new SteeringAdd(2, Server.Mood, 8f) { Hook = SteeringHook.AttnZ }),
            (new { vector = head, layer = 0, hook = "hook_z", head = 3, op = "cap", lo = 1f }, new SteeringAdd(0, head, 1f) { Hook = SteeringHook.AttnZ, Head = 3, Op = SteeringOp.Cap, Lo = 1f }),
        };
        JsonNode[] bodies = await Task.WhenAll(cases.Select(c => Server.PostOk("/v1/chat/completions", Chat(c.Json))));
        string[] served = bodies.Select(b => (string)b["choices"]![0]!["message"]!["content"]!).ToArray();
        for (int i = 0; i < cases.Length; i++)
            Assert.That(served[i], Is.EqualTo(Alone(cases[i].Term)), $"case {i}");
        string unsteered = new Generator(Lm.Model, Lm.Tokenizer).Generate(
            [new GenerationRequest(Lm.EncodePrompt(Prompt), Tokens, new SamplingOptions(0f), null, 0, Lm.Tokenizer.EosTokenIds)])[0].Text!;
        Assert.That(served.Count(t => t != unsteered), Is.GreaterThanOrEqualTo(3), string.Join(" / ", served));
    }

    static IEnumerable<TestCaseData> BadHooks()
    {
        TestCaseData Case(string name, object steering, string message, string param) => new TestCaseData(steering, message, param).SetName(name);
        yield return Case("Hook_unknown", new { vector = "mood", layer = 1, hook = "blocks.1.hook_q" }, "is not one of resid_post, resid_mid, attn_z", "steering[0].hook");
        yield return Case("Hook_block_and_layer_disagree", new { vector = "mood", layer = 1, hook = "blocks.2.hook_resid_mid" }, "names block 2 but the term's layer is 1", "steering[0].hook");
        yield return Case("Hook_block_out_of_range", new { vector = "mood", hook = "blocks.9.hook_resid_mid" }, "the model has blocks 0..3", "steering[0].hook");
        yield return Case("Hook_without_a_block_needs_layer", new { vector = "mood", hook = "resid_mid" }, "'steering[0].layer' is required", "steering[0].layer");
        yield return Case("Head_on_a_residual_hook", new { vector = "mood", layer = 1, head = 1 }, "applies to hook attn_z only", "steering[0].head");
        yield return Case("Head_out_of_range", new { vector = "mood", layer = 1, hook = "attn_z", head = 4 }, "'steering[0].head' is 4", "steering[0].head");
        yield return Case("Head_vector_is_head_dim_wide", new { vector = "mood", layer = 1, hook = "attn_z", head = 0 }, "has 128 elements; hook attn_z with a head needs 32", "steering[0].vector");
    }

    [TestCaseSource(nameof(BadHooks))]
    public async Task Bad_hook_fields_are_400_naming_the_field(object steering, string message, string param)
    {
        var (status, text, p) = await Error(await Server.Post("/v1/chat/completions", Chat(steering)));
        Assert.That(status, Is.EqualTo(400), text);
        Assert.That(text, Does.Contain(message));
        Assert.That(p, Is.EqualTo(param));
    }
}
