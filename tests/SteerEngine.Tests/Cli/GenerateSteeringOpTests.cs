using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>`steer generate --op/--positions/--hook ...`: the records carry the term's spec, the text is the library's, bad flags are one-line errors.</summary>
[TestFixture, NonParallelizable]
public class GenerateSteeringOpTests
{
    /// <summary>Runs a one-prompt ("Hello there") generate job on the tiny model with vector v and the flags; returns its one record.</summary>
    static JsonElement Job(float[] v, params string[] flags)
    {
        string dir = TestModels.TempDir("genop"), vectorPath = Path.Combine(dir, "v.npy"), output = Path.Combine(dir, "out.jsonl");
        string prompts = Path.Combine(dir, "p.jsonl");
        File.WriteAllLines(prompts, ["{\"id\": \"a\", \"question\": \"Hello there\"}"]);
        VectorFile.Write(vectorPath, SteeringVector.Direction(v));
        var (code, _, err) = SteerCli.Run(["generate", "--model", TestModels.Get("tiny"), "--prompts", prompts, "--out", output, "--vector", vectorPath,
            "--max-new-tokens", "6", .. flags]);
        Assert.That(code, Is.EqualTo(0), err);
        return JsonDocument.Parse(File.ReadAllLines(output).Single()).RootElement;
    }

    static string? LibraryText(LanguageModel lm, SteeringAdd term)
    {
        var request = new GenerationRequest(lm.EncodePrompt("Hello there"), 6, new SamplingOptions(0f), [term], 0, lm.Tokenizer.EosTokenIds);
        return new Generator(lm.Model, lm.Tokenizer).Generate([request])[0].Text;
    }

    [Test]
    public void A_job_with_an_op_and_a_position_mode_writes_its_spec_and_the_librarys_text()
    {
        float[] v = Compare.RandomVector(new Random(9), 128, 2f);
        JsonElement record = Job(v, "--layer", "1", "--multiplier", "0", "--op", "cap", "--hi", "-0.5", "--positions", "first_k", "--first-k", "3");
        Assert.That(record.GetProperty("op").GetString(), Is.EqualTo("cap"));
        Assert.That(record.GetProperty("lo").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(record.GetProperty("hi").GetDouble(), Is.EqualTo(-0.5));
        Assert.That(record.GetProperty("positions").GetString(), Is.EqualTo("first_k"));
        Assert.That(record.GetProperty("k").GetInt32(), Is.EqualTo(3));

        using var lm = LanguageModel.Load(TestModels.Get("tiny"));
        var term = new SteeringAdd(1, v, 0f, SteeringPositions.FirstK) { Op = SteeringOp.Cap, Hi = -0.5f, FirstK = 3 };
        Assert.That(record.GetProperty("response").GetString(), Is.EqualTo(LibraryText(lm, term)));
    }

    [Test]
    public void A_job_at_one_attention_head_writes_its_hook_and_the_librarys_text()
    {
        using var lm = LanguageModel.Load(TestModels.Get("tiny"));
        float[] v = Compare.RandomVector(new Random(9), lm.Config.HeadDim, 4f);
        JsonElement record = Job(v, "--hook", "blocks.1.attn.hook_z", "--head", "2", "--multiplier", "3");
        Assert.That(record.GetProperty("hook").GetString(), Is.EqualTo("attn_z"));
        Assert.That(record.GetProperty("head").GetInt32(), Is.EqualTo(2));
        Assert.That(record.GetProperty("layer").GetInt32(), Is.EqualTo(1));
        Assert.That(record.GetProperty("response").GetString(), Is.EqualTo(LibraryText(lm, new SteeringAdd(1, v, 3f) { Hook = SteeringHook.AttnZ, Head = 2 })));
    }

    [TestCase(new[] { "--op", "scale" }, "steering op 'scale' is not one of")]
    [TestCase(new[] { "--op", "set" }, "--op set needs --value")]
    [TestCase(new[] { "--op", "add", "--lo", "1" }, "--lo and --hi go with --op cap, not add")]
    [TestCase(new[] { "--op", "cap" }, "steering op cap needs lo, hi or both")]
    [TestCase(new[] { "--positions", "first_k" }, "first_k needs k ≥ 1")]
    [TestCase(new[] { "--tokens", "1,2" }, "--tokens goes with --positions tokens")]
    [TestCase(new[] { "--positions", "tokens", "--tokens", "1,x" }, "'x' is not a token position")]
    [TestCase(new[] { "--hook", "mlp_out" }, "steering hook 'mlp_out' is not one of")]
    [TestCase(new[] { "--hook", "blocks.1.hook_resid_mid", "--layers", "2" }, "names block 1; --layers asks for 2")]
    [TestCase(new[] { "--head", "1" }, "--head goes with --hook attn_z, not resid_post")]
    public void Bad_op_or_position_flags_are_one_line_errors(string[] flags, string message)
    {
        var (code, _, err) = SteerCli.Run(["generate", "--model", TestModels.Get("tiny"), "--prompt", "hi", .. flags]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Contain(message).And.Not.Contain("\n"));
    }
}
