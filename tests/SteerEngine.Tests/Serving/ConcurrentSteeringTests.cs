using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>
/// Requests sent together share the engine's batch, yet each gets exactly the tokens it would get alone
/// from Generator and from `steer generate` with the same steering and seed.
/// </summary>
[TestFixture, NonParallelizable]
public class ConcurrentSteeringTests : DemoServerFixture
{
    const string Prompt = "the cat";
    const int Tokens = 8;
    static float Multiplier(int i) => -8f + 0.5f * i;

    async Task<string[]> Concurrently(float temperature)
    {
        var tasks = Enumerable.Range(0, 32).Select(i => Server.PostOk("/v1/chat/completions", new
        {
            model = TestServer.Model,
            messages = new[] { new { role = "user", content = Prompt } },
            max_tokens = Tokens,
            temperature,
            seed = 100 + i,
            steering = new[] { new { vector = "mood", layer = 2, multiplier = Multiplier(i), positions = "all" } },
        }));
        JsonNode[] bodies = await Task.WhenAll(tasks);
        return bodies.Select(b => (string)b["choices"]![0]!["message"]!["content"]!).ToArray();
    }

    string Alone(int i, float temperature)
    {
        var request = new GenerationRequest(Lm.EncodePrompt(Prompt), Tokens, new SamplingOptions(temperature),
            [new SteeringAdd(2, Server.Mood, Multiplier(i))], SplitMix64.Hash((ulong)(100 + i) ^ SplitMix64.Hash(0UL)), Lm.Tokenizer.EosTokenIds);
        return new Generator(Lm.Model, Lm.Tokenizer).Generate([request])[0].Text!;
    }

    string SteerGenerate(int i, float temperature)
    {
        var (code, output, err) = SteerCli.Run("generate", "--model", DemoFiles.ModelDir, "--prompt", Prompt, "--vector", Path.Combine(Server.VectorsDir, "mood.safetensors"),
            "--layer", "2", "--multiplier", Multiplier(i).ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", (100 + i).ToString(),
            "--temperature", temperature.ToString(System.Globalization.CultureInfo.InvariantCulture), "--max-new-tokens", Tokens.ToString());
        Assert.That(code, Is.EqualTo(0), err);
        return output.TrimEnd('\n');
    }

    [TestCase(0f)]
    [TestCase(0.9f)]
    public async Task Thirty_two_concurrent_multipliers_equal_thirty_two_runs_alone(float temperature)
    {
        string[] served = await Concurrently(temperature);
        for (int i = 0; i < 32; i++) Assert.That(served[i], Is.EqualTo(Alone(i, temperature)), $"multiplier {Multiplier(i)}");
        foreach (int i in new[] { 0, 17, 31 }) Assert.That(served[i], Is.EqualTo(SteerGenerate(i, temperature)), $"steer generate, multiplier {Multiplier(i)}");
        Assert.That(served.Distinct().Count(), Is.GreaterThan(2), "the multipliers should change the text");
    }

    /// <summary>The same term as the API's JSON item and as the library's SteeringAdd.</summary>
    (object Json, SteeringAdd Term)[] OpTerms(int n) =>
    [
        (new { vector = "mood", layer = 2, multiplier = 6f, op = "add_normalized", positions = "first_k", k = 3 },
            new SteeringAdd(2, Server.Mood, 6f, SteeringPositions.FirstK) { Op = SteeringOp.AddNormalized, FirstK = 3 }),
        (new { vector = "mood", layer = 2, multiplier = 0f, op = "ablate", positions = "all" },
            new SteeringAdd(2, Server.Mood, 0f) { Op = SteeringOp.Ablate }),
        (new { vector = "mood", layer = 1, multiplier = 0f, op = "cap", hi = -20f, positions = "response" },
            new SteeringAdd(1, Server.Mood, 0f, SteeringPositions.Response) { Op = SteeringOp.Cap, Hi = -20f }),
        (new { vector = "mood", layer = 2, multiplier = 0f, op = "set", value = -40f, positions = "response" },
            new SteeringAdd(2, Server.Mood, 0f, SteeringPositions.Response) { Op = SteeringOp.Set, Value = -40f }),
        (new { vector = "mood", layer = 2, multiplier = -16f, op = "add", positions = "tokens", tokens = new[] { 2, n - 1, n + 2 } },
            new SteeringAdd(2, Server.Mood, -16f, SteeringPositions.Tokens) { TokenPositions = [2, n - 1, n + 2] }),
    ];

    [Test]
    public async Task Concurrent_requests_with_different_ops_and_positions_equal_runs_alone()
    {
        var terms = OpTerms(Lm.EncodePrompt(Prompt).Length);
        var tasks = terms.Select(t => Server.PostOk("/v1/chat/completions", new
        {
            model = TestServer.Model,
            messages = new[] { new { role = "user", content = Prompt } },
            max_tokens = Tokens,
            temperature = 0f,
            steering = new[] { t.Json },
        }));
        JsonNode[] bodies = await Task.WhenAll(tasks);
        string Alone(SteeringAdd[] steering) => new Generator(Lm.Model, Lm.Tokenizer).Generate(
            [new GenerationRequest(Lm.EncodePrompt(Prompt), Tokens, new SamplingOptions(0f), steering, 0, Lm.Tokenizer.EosTokenIds)])[0].Text!;
        string[] served = bodies.Select(b => (string)b["choices"]![0]!["message"]!["content"]!).ToArray();
        for (int i = 0; i < terms.Length; i++)
            Assert.That(served[i], Is.EqualTo(Alone([terms[i].Term])), $"term {i}: {terms[i].Term.Op.Name()}");
        string unsteered = Alone([]);
        Assert.That(served.Count(t => t != unsteered), Is.GreaterThanOrEqualTo(3), $"most terms should change the text: {string.Join(" / ", served)}");
    }
}
