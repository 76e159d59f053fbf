using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>`steer generate --op/--positions ...`: the records carry the term's spec, the text is the library's, bad flags are one-line errors.</summary>
[TestFixture, NonParallelizable]
public class GenerateSteeringOpTests
{
    [Test]
    public void A_job_with_an_op_and_a_position_mode_writes_its_spec_and_the_librarys_text()
    {
        string dir = TestModels.TempDir("genop"), vectorPath = Path.Combine(dir, "v.npy"), output = Path.Combine(dir, "out.jsonl");
        string prompts = Path.Combine(dir, "p.jsonl");
        File.WriteAllLines(prompts, ["{\"id\": \"a\", \"question\": \"Hello there\"}"]);
        float[] v = Compare.RandomVector(new Random(9), 128, 2f);
        VectorFile.Write(vectorPath, SteeringVector.Direction(v));
        var (code, _, err) = SteerCli.Run("generate", "--model", TestModels.Get("tiny"), "--prompts", prompts, "--out", output, "--vector", vectorPath,
            "--layer", "1", "--multiplier", "0", "--op", "cap", "--hi", "-0.5", "--positions", "first_k", "--first-k", "3", "--max-new-tokens", "6");
        Assert.That(code, Is.EqualTo(0), err);
        JsonElement record = JsonDocument.Parse(File.ReadAllLines(output).Single()).RootElement;
        Assert.That(record.GetProperty("op").GetString(), Is.EqualTo("cap"));
        Assert.That(record.GetProperty("lo").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(record.GetProperty("hi").GetDouble(), Is.EqualTo(-0.5));
        Assert.That(record.GetProperty("positions").GetString(), Is.EqualTo("first_k"));
        Assert.That(record.GetProperty("k").GetInt32(), Is.EqualTo(3));

        using var lm = LanguageModel.Load(TestModels.Get("tiny"));
        var term = new SteeringAdd(1, v, 0f, SteeringPositions.FirstK) { Op = SteeringOp.Cap, Hi = -0.5f, FirstK = 3 };
        var request = new GenerationRequest(lm.EncodePrompt("Hello there"), 6, new SamplingOptions(0f), [term], 0, lm.Tokenizer.EosTokenIds);
        Assert.That(record.GetProperty("response").GetString(), Is.EqualTo(new Generator(lm.Model, lm.Tokenizer).Generate([request])[0].Text));
    }

    [TestCase(new[] { "--op", "scale" }, "steering op 'scale' is not one of")]
    [TestCase(new[] { "--op", "set" }, "--op set needs --value")]
    [TestCase(new[] { "--op", "add", "--lo", "1" }, "--lo and --hi go with --op cap, not add")]
    [TestCase(new[] { "--op", "cap" }, "steering op cap needs lo, hi or both")]
    [TestCase(new[] { "--positions", "first_k" }, "first_k needs k ≥ 1")]
    [TestCase(new[] { "--tokens", "1,2" }, "--tokens goes with --positions tokens")]
    [TestCase(new[] { "--positions", "tokens", "--tokens", "1,x" }, "'x' is not a token position")]
    public void Bad_op_or_position_flags_are_one_line_errors(string[] flags, string message)
    {
        var (code, _, err) = SteerCli.Run(["generate", "--model", TestModels.Get("tiny"), "--prompt", "hi", .. flags]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Contain(message).And.Not.Contain("\n"));
    }
}
