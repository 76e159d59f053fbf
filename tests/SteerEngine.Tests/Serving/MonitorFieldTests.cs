using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;

namespace SteerEngine.Tests.Serving;

/// <summary>
/// The chat request's <c>monitor</c> extension ({"vector", "layer"}): each choice carries one projection
/// per generated token, the same values <see cref="Generator"/> computes for the same monitor; streamed,
/// they come with the finishing chunk; a bad monitor is a 400 naming the field.
/// </summary>
public class MonitorFieldTests : DemoServerFixture
{
    static object Body(bool stream, object monitor) => new
    {
        model = TestServer.Model, messages = new[] { new { role = "user", content = "how was your day?" } }, temperature = 0, max_tokens = 24, stream,
        steering = new[] { new { vector = "mood", layer = 1, multiplier = 2 } }, monitor,
    };

    [Test]
    public async Task Projections_match_the_generators_and_streaming_sends_the_same_with_the_finishing_chunk()
    {
        JsonNode reply = await Server.PostOk("/v1/chat/completions", Body(false, new { vector = "mood", layer = 2 }));
        float[] served = reply["choices"]![0]!["projections"]!.AsArray().Select(x => (float)x!).ToArray();

        string prompt = Lm.Template.Render([new SteerEngine.Tokenization.ChatMessage("user", "how was your day?")], true,
            new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
        var request = new GenerationRequest(Lm.Tokenizer.Encode(prompt, addBos: false), 24, new SamplingOptions(),
            [new SteeringAdd(1, Server.Mood, 2f)], 0, Lm.Tokenizer.EosTokenIds) { Monitors = [new ProjectionMonitor("mood@2", 2, Server.Mood)] };
        GenerationResult direct = new Generator(Lm.Model, Lm.Tokenizer).Generate([request])[0];
        Assert.That(served, Has.Length.EqualTo(direct.Tokens.Length));
        Assert.That(served, Is.EqualTo(direct.Projections![0]).Within(1e-3f));

        HttpResponseMessage streamed = await Server.Post("/v1/chat/completions", Body(true, new { vector = "mood", layer = 2 }));
        var events = (await streamed.Content.ReadAsStringAsync()).Split('\n')
            .Where(l => l.StartsWith("data: {")).Select(l => JsonNode.Parse(l[6..])!).ToList();
        var withProjections = events.Where(e => e["choices"]!.AsArray().Any(c => c!["projections"] is not null)).ToList();
        Assert.That(withProjections, Has.Count.EqualTo(1));
        JsonNode last = withProjections[0]["choices"]![0]!;
        Assert.That(last["finish_reason"]!.GetValue<string>(), Is.Not.Null);
        Assert.That(last["projections"]!.AsArray().Select(x => (float)x!), Is.EqualTo(served));
    }

    [TestCase("{\"vector\": \"nosuch\", \"layer\": 1}", "monitor.vector")]
    [TestCase("{\"vector\": \"mood\", \"layer\": 9}", "monitor.layer")]
    [TestCase("{\"vector\": \"mood\"}", "monitor.layer")]
    [TestCase("{\"vector\": \"mood\", \"layer\": 1, \"extra\": 1}", "monitor.extra")]
    [TestCase("\"mood\"", "monitor")]
    public async Task A_bad_monitor_is_a_400_naming_the_field(string monitor, string param)
    {
        string body = $"{{\"model\": \"demo\", \"messages\": [{{\"role\": \"user\", \"content\": \"hi\"}}], \"monitor\": {monitor}}}";
        HttpResponseMessage r = await Server.Post("/v1/chat/completions", body);
        string text = await r.Content.ReadAsStringAsync();
        Assert.That((int)r.StatusCode, Is.EqualTo(400), text);
        Assert.That(JsonNode.Parse(text)!["error"]!["param"]!.GetValue<string>(), Is.EqualTo(param), text);
    }
}
