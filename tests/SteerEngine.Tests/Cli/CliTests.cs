using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>The `steer` command run in-process: user errors are one line on stderr and exit code 1.</summary>
[TestFixture, NonParallelizable]
public class CliTests
{
    static (int Code, string Out, string Err) Steer(params string[] args) => SteerCli.Run(args);

    [Test]
    public void Model_init_with_an_unknown_shape_fails_with_one_line()
    {
        var (code, _, err) = Steer("model", "init", "--shape", "huge", "--out", TestModels.TempDir("cli"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.StartWith("error: unknown model shape 'huge'").And.Not.Contain("\n"));
    }

    [Test]
    public void Generate_on_a_missing_model_directory_names_it()
    {
        var (code, _, err) = Steer("generate", "--model", "/nonexistent/model", "--prompt", "hi");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("/nonexistent/model"));
    }

    [Test]
    public void Generate_greedy_is_deterministic_and_steering_changes_it()
    {
        string model = TestModels.Get("tiny");
        string dir = TestModels.TempDir("cli");
        string vector = Path.Combine(dir, "v.npy");
        SteerEngine.Steering.VectorFile.Write(vector, SteerEngine.Steering.SteeringVector.Direction(Compare.RandomVector(new Random(1), 128, 20f)));

        var a = Steer("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "8");
        var b = Steer("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "8");
        var s = Steer("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "8", "--vector", vector, "--layer", "2", "--multiplier", "4");
        Assert.That(a.Code, Is.EqualTo(0), a.Err);
        Assert.That(s.Code, Is.EqualTo(0), s.Err);
        Assert.That(b.Out, Is.EqualTo(a.Out));
        Assert.That(s.Out, Is.Not.EqualTo(a.Out));
    }

    [Test]
    public void Generate_with_a_vector_of_the_wrong_size_fails_clearly()
    {
        string dir = TestModels.TempDir("cli");
        string vector = Path.Combine(dir, "small.npy");
        SteerEngine.Steering.VectorFile.Write(vector, SteerEngine.Steering.SteeringVector.Direction(new float[10]));
        var (code, _, err) = Steer("generate", "--model", TestModels.Get("tiny"), "--prompt", "Hi", "--vector", vector, "--layer", "1");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("10 elements").And.Contain("128"));
    }

    [Test]
    public void Demo_json_reports_one_rate_per_multiplier()
    {
        string plot = Path.Combine(TestModels.TempDir("cli"), "sweep.png");
        var (code, output, err) = Steer("demo", "--multipliers", "-4,0,4", "--samples", "2", "--max-new-tokens", "32", "--plot", plot, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        var doc = System.Text.Json.JsonDocument.Parse(output);
        double[] Values(string name) => doc.RootElement.GetProperty(name).EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.That(Values("multipliers"), Is.EqualTo(new[] { -4.0, 0, 4 }));
        double[] rates = Values("trait_rate");
        Assert.That(rates, Has.Length.EqualTo(3));
        Assert.That(Values("coherence"), Has.Length.EqualTo(3));
        Assert.That(rates[2], Is.GreaterThan(rates[1]));
        Assert.That(rates[1], Is.GreaterThan(rates[0]));
        Assert.That(File.ReadAllBytes(plot)[..4], Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
    }

    [Test]
    public void Demo_with_bipo_trains_a_vector_that_moves_the_rate()
    {
        string plot = Path.Combine(TestModels.TempDir("cli"), "bipo.png");
        var (code, output, err) = Steer("demo", "--method", "bipo", "--multipliers", "-2,2", "--samples", "2", "--max-new-tokens", "32", "--plot", plot, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        var o = System.Text.Json.JsonDocument.Parse(output).RootElement;
        Assert.That(o.GetProperty("method").GetString(), Is.EqualTo("bipo"));
        double[] rates = o.GetProperty("trait_rate").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.That(rates[1] - rates[0], Is.GreaterThan(0.5));

        var bad = Steer("demo", "--method", "pca", "--json");
        Assert.That(bad.Code, Is.EqualTo(1));
        Assert.That(bad.Err.Trim(), Does.StartWith("error: --method 'pca'").And.Not.Contain("\n"));
    }

    [Test]
    public void Demo_on_a_model_without_the_demo_language_fails_with_one_line()
    {
        var (code, _, err) = Steer("demo", "--model", TestModels.Get("tiny"), "--json");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Contain("lexicon.json").And.Not.Contain("\n"));
    }

    [Test]
    public void Score_writes_logprobs_per_input_id_and_names_a_broken_line()
    {
        string dir = TestModels.TempDir("score");
        string input = Path.Combine(dir, "in.jsonl");
        File.WriteAllLines(input, ["{\"id\": \"a\", \"prompt\": \"Hello\", \"completion\": \" world\"}", "{\"id\": \"b\", \"prompt_ids\": [128000, 5], \"completion_ids\": [7, 8, 9]}"]);
        string output = Path.Combine(dir, "out.jsonl");
        var (code, _, err) = Steer("score", "--model", TestModels.Get("tiny"), "--input", input, "--out", output);
        Assert.That(code, Is.EqualTo(0), err);
        var lines = File.ReadAllLines(output).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(lines.Select(l => l.GetProperty("id").GetString()), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(lines[1].GetProperty("n_tokens").GetInt32(), Is.EqualTo(3));
        double sum = lines[1].GetProperty("sum_logprob").GetDouble();
        Assert.That(lines[1].GetProperty("perplexity").GetDouble(), Is.EqualTo(Math.Exp(-sum / 3)).Within(1e-6));

        File.AppendAllText(input, "{\"id\": \"c\", \"prompt\": 5}\n");
        var broken = Steer("score", "--model", TestModels.Get("tiny"), "--input", input, "--out", output, "--resume");
        Assert.That(broken.Code, Is.EqualTo(1));
        Assert.That(broken.Err, Does.Contain("in.jsonl:3"));
        Assert.That(File.ReadAllLines(output), Has.Length.EqualTo(2), "records already written are kept");
    }

    [Test]
    public void Score_on_the_cuda_backend_without_a_driver_fails_with_one_line_and_writes_nothing()
    {
        if (File.Exists("/usr/lib/x86_64-linux-gnu/libcuda.so.1")) Assert.Ignore("this machine has an NVIDIA driver");
        string dir = TestModels.TempDir("score-cuda");
        string input = Path.Combine(dir, "in.jsonl"), output = Path.Combine(dir, "out.jsonl");
        File.WriteAllLines(input, ["{\"id\": \"a\", \"prompt\": \"Hello\", \"completion\": \" world\"}"]);
        var (code, _, err) = SteerCli.RunWithThisMachinesDriver("score", "--model", TestModels.Get("tiny"), "--input", input, "--out", output, "--backend", "cuda");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Is.EqualTo("error: --backend cuda: no NVIDIA driver here (libcuda.so.1 cannot be loaded); --backend cuda-emu runs the same path on the CPU emulator"));
        Assert.That(File.Exists(output), Is.False);
    }

    [Test]
    public void Generate_with_steering_gives_each_question_its_answers()
    {
        using var lm = SteerEngine.Model.LanguageModel.Load(TestModels.Get("tiny"));
        float[] v = Compare.RandomVector(new Random(2), 128, 2f);
        var answers = SteerEngine.Generation.SteeredGeneration.GenerateWithSteering(lm, ["One?", "Two?", "Three?"], v, layer: 2, strength: 3f,
            answersPerQuestion: 2, maxNewTokens: 4, temperature: 1f);
        Assert.That(answers, Has.Count.EqualTo(3));
        Assert.That(answers.All(a => a.Count == 2), Is.True);
        var baseline = SteerEngine.Generation.SteeredGeneration.GenerateBaseline(lm, ["One?", "Two?", "Three?"], answersPerQuestion: 2, maxNewTokens: 4, temperature: 1f);
        Assert.That(baseline.SelectMany(a => a), Is.Not.EqualTo(answers.SelectMany(a => a)));
    }

    [Test]
    public void Generate_runs_on_the_emulated_cuda_backend_with_tensor_parallelism()
    {
        if (!File.Exists(Repo.Path("out", "native-cuemu", "libsteer_cuemu.so"))) Assert.Ignore("native/cuemu not built: run ./build.sh");
        var (code, output, err) = Steer("generate", "--model", TestModels.Get("tiny"), "--prompt", "Hi", "--max-new-tokens", "3", "--backend", "cuda-emu", "--tp", "2");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output.Trim(), Is.Not.Empty);
        var bad = Steer("generate", "--model", TestModels.Get("tiny"), "--prompt", "Hi", "--backend", "tpu");
        Assert.That(bad.Code, Is.EqualTo(1));
        Assert.That(bad.Err, Does.Contain("backend 'tpu'"));
    }

    [Test]
    public void Bench_json_has_the_documented_fields()
    {
        if (!SteerEngine.Runtime.Cpu.NativeCpu.IsAvailable) Assert.Ignore("libsteer_cpu not built: run ./build.sh");
        var (code, output, err) = Steer("bench", "--model", TestModels.Get("tiny"), "--prefill", "16", "--batches", "1,2", "--steps", "1", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        var o = System.Text.Json.JsonDocument.Parse(output).RootElement;
        var machine = o.GetProperty("machine");
        foreach (string f in new[] { "read_gb_s", "f32_gflop_s", "compute_gflop_s" })
            Assert.That(machine.GetProperty(f).GetDouble(), Is.GreaterThan(0), f);
        // The bf16 dot-product peak is that instruction's alone: 0 on a CPU without AVX512_BF16.
        bool hasBf16Dot = (SteerEngine.Runtime.Cpu.NativeCpu.Features() & SteerEngine.Runtime.Cpu.NativeCpu.FeatureAvx512Bf16) != 0;
        Assert.That(machine.GetProperty("bf16_gflop_s").GetDouble(), hasBf16Dot ? Is.GreaterThan(0) : Is.EqualTo(0), "bf16_gflop_s");
        Assert.That(o.GetProperty("prefill").GetProperty("tokens").GetInt32(), Is.EqualTo(16));
        Assert.That(o.GetProperty("prefill").GetProperty("roofline_fraction").GetDouble(), Is.GreaterThan(0));
        var decode = o.GetProperty("decode").EnumerateArray().ToList();
        Assert.That(decode.Select(d => (d.GetProperty("batch").GetInt32(), d.GetProperty("steered").GetBoolean())),
            Is.EquivalentTo(new[] { (1, false), (1, true), (2, false), (2, true) }));
        Assert.That(o.TryGetProperty("steering_overhead", out _), Is.True);
    }
}
