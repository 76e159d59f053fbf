using SteerEngine.Generation;

namespace SteerEngine.Tests.Generation;

/// <summary>
/// The fast sampler against the reference (the sampler as it was: a full sort per filtered draw):
/// the same token for the same (logits, options, draw), over logit shapes from flat to peaked, with
/// ties, and every option combination.
/// </summary>
[TestFixture]
public class SamplerEquivalenceTests
{
    /// <summary>Logit shapes: flat (random-weight tiny model), peaked (tied 1B shape), a trained model's (a few high, a broad bulk), ties.</summary>
    static float[] Logits(string shape, int vocab, Random rng) => shape switch
    {
        "flat" => Gaussian(rng, vocab, 0, 1),
        "peaked" => Gaussian(rng, vocab, 0, 45),
        "trained" => Trained(rng, vocab),
        "quantized" => Gaussian(rng, vocab, 0, 3).Select(x => MathF.Round(x * 2) / 2).ToArray(),
        "equal" => new float[vocab],
        "two-level" => Enumerable.Range(0, vocab).Select(i => i % 97 == 0 ? 4f : -1f).ToArray(),
        "extreme" => Enumerable.Range(0, vocab).Select(i => i % 11 == 0 ? -3.4e38f : i % 13 == 0 ? -1e30f : i % 17 == 0 || i == 1 ? 40f : (float)rng.NextDouble() * 8).ToArray(),
        "signed-zero-max" => Enumerable.Range(0, vocab).Select(i => i % 5 == 0 ? -0f : i % 5 == 1 ? 0f : -2f - i % 7).ToArray(),
        _ => throw new ArgumentException(shape),
    };

    static float[] Gaussian(Random rng, int n, float mean, float std) => Enumerable.Range(0, n).Select(_ =>
        mean + std * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()))).ToArray();

    static float[] Trained(Random rng, int n)
    {
        float[] l = Gaussian(rng, n, 0, 2.5f);
        for (int j = 0; j < 12; j++) l[rng.Next(n)] = 14 + 8 * (float)rng.NextDouble();
        return l;
    }

    static readonly string[] Shapes = ["flat", "peaked", "trained", "quantized", "equal", "two-level", "signed-zero-max", "extreme"];

    static IEnumerable<SamplingOptions> Options()
    {
        float[] temperatures = [0f, 1e-3f, 0.7f, 1.5f, 80f];
        int[] topKs = [0, 1, 50, 1 << 20];
        float[] topPs = [1f, 0.9f, 0.999f, 1e-6f];
        float[] minPs = [0f, 0.05f, 0.3f, 1e-9f];
        float[] penalties = [1f, 1.3f];
        foreach (float t in temperatures)
            foreach (int k in topKs)
                foreach (float p in topPs)
                    foreach (float m in minPs)
                        foreach (float r in penalties)
                            yield return new SamplingOptions(t, p, k, m, r);
    }

    static void AssertSame(float[] logits, SamplingOptions o, double u, int[] history, string what)
    {
        float[] a = (float[])logits.Clone(), b = (float[])logits.Clone();
        int expected = ReferenceSampler.Sample(a, o, u, history);
        int actual = Sampler.Sample(b, o, u, history);
        Assert.That(actual, Is.EqualTo(expected), $"{what}, {o}, u = {u:R}");
        Assert.That(b, Is.EqualTo(a), $"{what}: the repetition penalty edits the logits as the reference does");
    }

    [Test]
    public void Every_option_combination_gives_the_reference_token_on_every_logit_shape()
    {
        var rng = new Random(19);
        var draws = new SplitMix64(19);
        var options = Options().ToList();
        foreach (string shape in Shapes)
            foreach (int vocab in new[] { 1, 7, 1501 })
            {
                float[] logits = Logits(shape, vocab, rng);
                int[] history = Enumerable.Range(0, Math.Min(vocab, 40)).Select(_ => rng.Next(vocab)).ToArray();
                for (int j = 0; j < options.Count; j++)
                {
                    // A fresh draw for every combination, and the extreme draws in turn.
                    double u = (j % 8) switch { 0 => 0.5 / (1UL << 53), 1 => 1 - 0.5 / (1UL << 53), _ => draws.NextOpenUnit() };
                    AssertSame(logits, options[j], u, history, $"{shape} V={vocab}");
                }
            }
    }

    [Test]
    public void The_common_options_give_the_reference_token_at_Llama_3_vocabulary_size()
    {
        var rng = new Random(20);
        var draws = new SplitMix64(20);
        SamplingOptions[] options =
        [
            new(), new(1f), new(0.7f), new(1f, TopP: 0.9f), new(1f, TopK: 50), new(1f, MinP: 0.05f),
            new(0.7f, 0.95f, 40, 0.02f, 1.1f), new(1.5f, TopP: 0.8f),
        ];
        long before = Sampler.ReferenceDraws;
        foreach (string shape in new[] { "flat", "peaked", "trained", "quantized" })
        {
            float[] logits = Logits(shape, 128256, rng);
            int[] history = Enumerable.Range(0, 60).Select(_ => rng.Next(128256)).ToArray();
            foreach (SamplingOptions o in options)
                AssertSame(logits, o, draws.NextOpenUnit(), history, shape);
        }
        Assert.That(Sampler.ReferenceDraws - before, Is.Zero, "the fast path decided every draw");
    }

    [Test]
    public void Many_draws_of_plain_temperature_top_p_and_min_p_give_the_reference_token()
    {
        // Every draw walks a different bucket of the top-p / min-p search and a different block of
        // the temperature walk; the extreme shape has z = −inf, far-below terms and 989 tokens tied
        // at the top (with an even count, top-p 0.5 would end exactly on the tie's half: a sum that
        // close to its threshold is rightly left to the reference).
        var rng = new Random(24);
        var draws = new SplitMix64(24);
        SamplingOptions[] options =
        [
            new(1f), new(0.7f), new(1f, TopP: 0.9f), new(1f, TopP: 0.5f), new(1.3f, MinP: 0.05f), new(1f, TopP: 0.95f, MinP: 0.02f),
        ];
        long before = Sampler.ReferenceDraws;
        foreach (string shape in new[] { "flat", "peaked", "trained", "extreme" })
        {
            float[] logits = Logits(shape, 20000, rng);
            foreach (SamplingOptions o in options)
                for (int d = 0; d < 25; d++)
                    AssertSame(logits, o, draws.NextOpenUnit(), [], shape);
        }
        Assert.That(Sampler.ReferenceDraws - before, Is.Zero, "the fast path decided every draw");
    }

    [Test]
    public void Draws_next_to_every_cumulative_boundary_give_the_reference_token()
    {
        // A draw placed on (and a hair either side of) the reference's own cumulative sums: the
        // cases where a sum that differed in its last bit would pick the neighbouring token.
        var rng = new Random(21);
        foreach (string shape in new[] { "trained", "quantized", "flat" })
        {
            float[] logits = Logits(shape, 4000, rng);
            foreach (SamplingOptions o in new SamplingOptions[] { new(1f), new(1f, TopP: 0.9f), new(1f, TopK: 50), new(1f, MinP: 0.01f) })
            {
                double[] p = logits.Select(l => Math.Exp(l - logits.Max())).OrderByDescending(x => x).ToArray();
                double total = p.Sum(), acc = 0;
                for (int i = 0; i < 12; i++)
                {
                    acc += p[i];
                    double u = acc / total;
                    foreach (double v in new[] { u, Math.BitDecrement(u), Math.BitIncrement(u) })
                        if (v > 0 && v < 1) AssertSame(logits, o, v, [], $"{shape} boundary {i}");
                }
            }
        }
    }

    [Test]
    public void Rows_sampled_in_parallel_give_the_reference_tokens()
    {
        var rng = new Random(22);
        var draws = new SplitMix64(22);
        var rows = Enumerable.Range(0, 16).Select(r => Logits(Shapes[r % 4], 128256, rng)).ToArray();
        var options = new SamplingOptions[] { new(1f, TopP: 0.9f), new(1f, TopK: 50), new(1f, MinP: 0.05f), new(1f) };
        double[] u = rows.Select(_ => draws.NextOpenUnit()).ToArray();
        var expected = rows.Select((l, r) => ReferenceSampler.Sample((float[])l.Clone(), options[r % 4], u[r])).ToArray();
        var actual = new int[rows.Length];
        Parallel.For(0, rows.Length, r => actual[r] = Sampler.Sample((float[])rows[r].Clone(), options[r % 4], u[r]));
        Assert.That(actual, Is.EqualTo(expected));
    }

    [Test]
    public void Non_finite_logits_give_the_reference_token()
    {
        float[][] cases =
        [
            [1f, float.NaN, 3f, 2f], [float.NaN, 1f, 2f], [1f, float.PositiveInfinity, 2f], [float.NegativeInfinity, 1f, 0.5f, 1f],
        ];
        foreach (float[] logits in cases)
            foreach (SamplingOptions o in new SamplingOptions[] { new(), new(1f), new(1f, TopP: 0.5f), new(1f, TopK: 2), new(1f, MinP: 0.1f) })
                foreach (double u in new[] { 0.1, 0.6, 0.95 })
                    AssertSame(logits, o, u, [], string.Join(",", logits));
    }

    [Test]
    public void The_samplers_exps_stay_within_its_bound_of_Math_Exp_at_every_width()
    {
        // The sampler's tolerances assume each term within DoubleExpError of Math.Exp, and every width gives the scalar path's bits.
        const int n = 1 << 20;
        var rng = new Random(23);
        float[] z = Enumerable.Range(0, n).Select(i => i < 64 ? -(float)i / 8 : -70f * (float)rng.NextDouble()).ToArray();
        z[64] = -64f; z[65] = -64.5f; z[66] = -0f; z[67] = float.NegativeInfinity;
        var e = new double[n];
        var zOut = new float[n];
        double[] rungs = [-1, -300];
        var above = new double[2];
        double total = SamplerExp.Terms(z, 0f, 1f, zOut, e, rungs, above);
        double worst = 0, sum = 0;
        var expectedAbove = new double[2];
        for (int i = 0; i < n; i++)
        {
            double scalar = SamplerExp.Exp(z[i]), exact = Math.Exp(z[i]);
            Assert.That(e[i], Is.EqualTo(scalar), $"z = {z[i]:R}: the vector path's bits");
            if (z[i] >= SamplerExp.Floor) worst = Math.Max(worst, Math.Abs(scalar - exact) / exact);
            else Assert.That(scalar, Is.Zero);
            sum += scalar;
            for (int r = 0; r < 2; r++) if (z[i] >= rungs[r]) expectedAbove[r] += scalar;
        }
        Assert.That(zOut, Is.EqualTo(z));
        Assert.That(worst, Is.LessThan(Sampler.DoubleExpError / 5));
        Assert.That(total, Is.EqualTo(sum).Within(Sampler.Tolerance(0, n) * sum), "any order, within both summations' roundings");
        for (int r = 0; r < 2; r++) Assert.That(above[r], Is.EqualTo(expectedAbove[r]).Within(Sampler.Tolerance(0, n) * sum), $"mass above {rungs[r]}");
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
        {
            var v = System.Runtime.Intrinsics.Vector512.Create(z.AsSpan(0, 8).ToArray().Select(x => (double)x).ToArray());
            var w = System.Runtime.Intrinsics.Vector256.Create(z.AsSpan(8, 4).ToArray().Select(x => (double)x).ToArray());
            for (int j = 0; j < 8; j++) Assert.That(SamplerExp.Exp(v)[j], Is.EqualTo(SamplerExp.Exp((double)z[j])));
            for (int j = 0; j < 4; j++) Assert.That(SamplerExp.Exp(w)[j], Is.EqualTo(SamplerExp.Exp((double)z[8 + j])));
        }
    }
}
