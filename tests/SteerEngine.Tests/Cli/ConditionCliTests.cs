using System.Text.Json;
using SteerEngine.Cli.Demo;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>
/// CAST and SAE vectors through the CLI: steer extract --condition finds the demo's topic split, steer generate
/// --condition steers only the prompts that meet it and says so in each record, steer score and steer chat
/// take the same term flags, and bad flags are one-line errors.
/// </summary>
[TestFixture, NonParallelizable]
public class ConditionCliTests
{
    static string WriteQuestions(string path, IEnumerable<string> questions)
    {
        File.WriteAllLines(path, questions.Select((q, i) => JsonSerializer.Serialize(new { id = Path.GetFileNameWithoutExtension(path) + i, question = q })));
        return path;
    }

    [Test]
    public void Extract_condition_then_generate_with_it_steers_only_the_prompts_that_meet_it()
    {
        DemoFiles.RequireModel();
        string dir = TestModels.TempDir("cast-cli");
        var (a, b) = ConditionalSteeringTests.TopicSets(ConditionalSteeringTests.Forms);
        string fileA = WriteQuestions(Path.Combine(dir, "animals.jsonl"), a), fileB = WriteQuestions(Path.Combine(dir, "places.jsonl"), b);
        var (code, stdout, err) = SteerCli.Run("extract", "--condition", "--model", DemoFiles.ModelDir, "--a", fileA, "--b", fileB, "--name", "animals", "--out", dir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(stdout, Does.Contain("best: --condition-layer"));
        JsonElement best = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "animals.json"))).RootElement.GetProperty("best");
        Assert.That(best.GetProperty("f1").GetDouble(), Is.GreaterThanOrEqualTo(0.9));
        Assert.That(VectorFile.Read(Path.Combine(dir, "animals.safetensors")).Rows, Is.EqualTo(5));

        using (var lm = LanguageModel.Load(DemoFiles.ModelDir))
        {
            float[] mood = TraitVector.MeanDifference(lm, TraitVector.ReadPairs(Path.Combine(DemoFiles.ModelDir, "mood_pairs.jsonl")), 1);
            VectorFile.Write(Path.Combine(dir, "mood.npy"), SteeringVector.Direction(mood));
        }
        string prompts = WriteQuestions(Path.Combine(dir, "mixed.jsonl"), [a[0], a[^1], b[0], b[^1]]);
        string output = Path.Combine(dir, "out.jsonl");
        (code, _, err) = SteerCli.Run("generate", "--model", DemoFiles.ModelDir, "--prompts", prompts, "--out", output,
            "--vector", Path.Combine(dir, "mood.npy"), "--layer", "1", "--multiplier", "4", "--positions", "response", "--max-new-tokens", "8",
            "--condition", Path.Combine(dir, "animals.safetensors"), "--condition-layer", best.GetProperty("layer").GetInt32().ToString(),
            "--condition-threshold", best.GetProperty("threshold").GetDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            "--condition-comparator", best.GetProperty("comparator").GetString()!);
        Assert.That(code, Is.EqualTo(0), err);
        var met = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(r => r.GetProperty("question").GetString()!, r => r.GetProperty("condition").GetProperty("met").GetBoolean());
        Assert.That(met, Is.EquivalentTo(new Dictionary<string, bool> { [a[0]] = true, [a[^1]] = true, [b[0]] = false, [b[^1]] = false }));
    }

    [TestCase(new[] { "--condition-layer", "1" }, "--condition-layer and --condition-threshold go with --condition FILE")]
    [TestCase(new[] { "--condition", "X.npy", "--condition-threshold", "0" }, "--condition needs --condition-layer")]
    [TestCase(new[] { "--condition", "X.npy", "--condition-layer", "1" }, "--condition needs --condition-threshold")]
    [TestCase(new[] { "--condition", "X.npy", "--condition-layer", "1", "--condition-threshold", "0", "--condition-comparator", "above" }, "condition comparator 'above' is not one of greater, less")]
    [TestCase(new[] { "--condition", "X.npy", "--condition-layer", "9", "--condition-threshold", "0" }, "steering condition layer 9 is out of range")]
    [TestCase(new[] { "--vector", "X.npy#W_dec[0]", "--layer", "1" }, "X.npy#W_dec[0]")]
    public void Bad_condition_flags_are_one_line_errors(string[] flags, string message)
    {
        string dir = TestModels.TempDir("cast-bad");
        string vector = Path.Combine(dir, "c.npy");
        VectorFile.Write(vector, SteeringVector.Direction(Compare.RandomVector(new Random(3), 128)));
        string[] args = ["score", "--model", DemoFiles.ModelDir, "--input", Path.Combine(dir, "none.jsonl"), "--out", Path.Combine(dir, "o.jsonl"),
            .. flags.Select(f => f.Replace("X.npy", vector))];
        if (flags.Contains("--condition")) args = [.. args, "--vector", vector, "--layer", "1"];
        var (code, _, err) = SteerCli.Run(args);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Contain(message.Replace("X.npy", vector)).And.Not.Contain("\n"));
    }

    [Test]
    public void Score_takes_an_sae_feature_and_an_op_and_matches_the_library()
    {
        string dir = TestModels.TempDir("score-sae");
        float[] decoder = Compare.RandomVector(new Random(4), 3 * 128);
        string sae = Path.Combine(dir, "sae.safetensors");
        SafetensorsWriter.Write(sae, [new TensorSpec("W_dec", DType.F32, [3, 128])],
            (_, s) => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(decoder.AsSpan())));
        string input = Path.Combine(dir, "in.jsonl"), output = Path.Combine(dir, "out.jsonl");
        File.WriteAllLines(input, ["{\"id\": 1, \"prompt\": \"tell me about the dog.\", \"completion\": \"the dog is lovely.\"}"]);
        string[] common = ["score", "--model", DemoFiles.ModelDir, "--input", input, "--chat"];
        var (code, _, err) = SteerCli.Run([.. common, "--out", output, "--vector", $"{sae}#W_dec[2]*3", "--layer", "1", "--op", "set", "--value", "2"]);
        Assert.That(code, Is.EqualTo(0), err);
        double steered = JsonDocument.Parse(File.ReadAllLines(output).Single()).RootElement.GetProperty("sum_logprob").GetDouble();
        (code, _, err) = SteerCli.Run([.. common, "--out", output + ".plain"]);
        Assert.That(code, Is.EqualTo(0), err);
        double plain = JsonDocument.Parse(File.ReadAllLines(output + ".plain").Single()).RootElement.GetProperty("sum_logprob").GetDouble();

        using var lm = LanguageModel.Load(DemoFiles.ModelDir);
        float[] row = decoder.AsSpan(2 * 128, 128).ToArray().Select(x => x * 3).ToArray();
        var term = new SteeringAdd(1, row, 1f) { Op = SteeringOp.Set, Value = 2f };
        double expected = SteerEngine.Generation.SteeredGeneration.ScoreCompletions(lm, "tell me about the dog.", ["the dog is lovely."], [term])[0].SumLogprob;
        Assert.That(steered, Is.EqualTo(expected).Within(1e-4));
        Assert.That(steered, Is.Not.EqualTo(plain).Within(1e-6), "the term changes the score");
    }
}
