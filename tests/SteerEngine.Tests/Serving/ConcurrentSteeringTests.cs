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
public class ConcurrentSteeringTests
{
    const string Prompt = "the cat";
    const int Tokens = 8;
    TestServer _server = null!;
    LanguageModel _lm = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _server = await TestServer.Start();
        _lm = LanguageModel.Load(DemoFiles.ModelDir);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        await _server.DisposeAsync();
        _lm.Dispose();
    }

    static float Multiplier(int i) => -8f + 0.5f * i;

    async Task<string[]> Concurrently(float temperature)
    {
        var tasks = Enumerable.Range(0, 32).Select(i => _server.PostOk("/v1/chat/completions", new
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
        var request = new GenerationRequest(_lm.EncodePrompt(Prompt), Tokens, new SamplingOptions(temperature),
            [new SteeringAdd(2, _server.Mood, Multiplier(i))], SplitMix64.Hash((ulong)(100 + i) ^ SplitMix64.Hash(0UL)), _lm.Tokenizer.EosTokenIds);
        return new Generator(_lm.Model, _lm.Tokenizer).Generate([request])[0].Text!;
    }

    string SteerGenerate(int i, float temperature)
    {
        var (code, output, err) = SteerCli.Run("generate", "--model", DemoFiles.ModelDir, "--prompt", Prompt, "--vector", Path.Combine(_server.VectorsDir, "mood.safetensors"),
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
}
