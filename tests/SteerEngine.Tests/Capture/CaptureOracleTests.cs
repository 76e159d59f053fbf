using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Capture;

/// <summary>Streaming capture reductions and per-token monitoring against the PyTorch oracle's hidden states.</summary>
[TestFixture]
public class CaptureOracleTests
{
    const double Tolerance = 1e-4;

    /// <summary>The oracle's hidden state of one sequence: entry e, position t. hidden: (L+1, T, H)</summary>
    static float[] State(float[] hidden, int entry, int t, int T, int H) => hidden.AsSpan((entry * T + t) * H, H).ToArray();

    static float[] MeanOver(float[] hidden, int entry, IEnumerable<int> positions, int T, int H)
    {
        var list = positions.ToList();
        var m = new double[H];
        foreach (int t in list)
            for (int i = 0; i < H; i++) m[i] += hidden[(entry * T + t) * H + i];
        return m.Select(x => (float)(x / list.Count)).ToArray();
    }

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Reductions_of_a_mixed_length_batch_equal_the_oracle_hidden_states(string shape)
    {
        using var model = Transformer.Load(TestModels.Get(shape));
        var rng = new Random(21);
        int[][] seqs = [Compare.RandomTokens(rng, 9, 128000), Compare.RandomTokens(rng, 30, 128000), Compare.RandomTokens(rng, 4, 128000)];
        int[] promptLens = [5, 12, 1];
        var examples = seqs.Select((s, i) => new CaptureExample(s, promptLens[i])).ToList();
        var reductions = new[] { Reduction.PromptAvg, Reduction.ResponseAvg, Reduction.PromptLast, Reduction.AllAvg };
        var captured = ActivationCollector.Collect(model, examples, reductions, batchSize: 3);

        using var oracle = TorchOracle.Forward(TestModels.Get(shape), seqs, promptLens, hiddenStates: true);
        int H = model.Config.HiddenSize;
        for (int s = 0; s < seqs.Length; s++)
        {
            float[] hidden = TorchOracle.Tensor(oracle, $"hidden.{s}");
            int T = seqs[s].Length, P = promptLens[s];
            for (int e = 0; e <= model.Config.NumLayers; e++)
            {
                Check(captured[s][Reduction.PromptAvg][e], MeanOver(hidden, e, Enumerable.Range(0, P), T, H), $"prompt_avg seq {s} entry {e}");
                Check(captured[s][Reduction.ResponseAvg][e], MeanOver(hidden, e, Enumerable.Range(P, T - P), T, H), $"response_avg seq {s} entry {e}");
                Check(captured[s][Reduction.PromptLast][e], State(hidden, e, P - 1, T, H), $"prompt_last seq {s} entry {e}");
                Check(captured[s][Reduction.AllAvg][e], MeanOver(hidden, e, Enumerable.Range(0, T), T, H), $"all_avg seq {s} entry {e}");
            }
        }
    }

    static void Check(float[] actual, float[] expected, string what) =>
        Assert.That(Compare.RelativeMaxError(actual, expected), Is.LessThanOrEqualTo(Tolerance), what);

    [Test]
    public void Monitored_projections_equal_the_oracle_per_token_projections()
    {
        string dir = TestModels.Get("tiny");
        using var model = Transformer.Load(dir);
        var rng = new Random(22);
        int[] prompt = Compare.RandomTokens(rng, 11, 128000);
        float[] v1 = Compare.RandomVector(rng, 128), v2 = Compare.RandomVector(rng, 128);
        var request = new GenerationRequest(prompt, 7, new SamplingOptions())
        {
            Monitors = [new ProjectionMonitor("a", 1, v1), new ProjectionMonitor("b", 3, v2)],
        };
        GenerationResult r = new Generator(model, options: new SchedulerOptions(MaxTokensPerStep: 4)).Generate([request])[0];

        int[] full = [.. prompt, .. r.Tokens];
        using var oracle = TorchOracle.Forward(dir, [full], hiddenStates: true);
        float[] hidden = TorchOracle.Tensor(oracle, "hidden.0");
        int T = full.Length, H = 128;
        foreach (var (m, vector, layer) in new[] { (0, v1, 1), (1, v2, 3) })
        {
            double norm = Math.Sqrt(vector.Sum(x => (double)x * x));
            float[] expected = Enumerable.Range(0, r.Tokens.Length).Select(i =>
            {
                float[] h = State(hidden, layer + 1, prompt.Length - 1 + i, T, H);
                return (float)(h.Zip(vector, (a, b) => (double)a * b).Sum() / norm);
            }).ToArray();
            Assert.That(r.Projections![m], Has.Length.EqualTo(r.Tokens.Length));
            Assert.That(Compare.RelativeMaxError(r.Projections[m], expected), Is.LessThanOrEqualTo(Tolerance), $"monitor {m}");
        }
    }
}
