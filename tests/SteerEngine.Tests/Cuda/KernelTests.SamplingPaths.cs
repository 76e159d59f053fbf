using SteerEngine.Generation;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The two paths of sample_rows' filtered draws (kernels/sampling.cu) against the host sampler: the
/// sorted candidates on peaked rows, the bisection on flat ones; the kernel's pass counts tell which ran.
/// </summary>
public partial class KernelTests
{
    const int LlamaVocab = 128_256;

    /// <summary>Per row: the token, full-row passes with a double exp per element, passes without, whether the candidates decided.</summary>
    readonly record struct DeviceDraw(int Token, int ExpPasses, int PlainPasses, bool Candidates);

    /// <summary>Row r of <paramref name="rows"/> drawn with cases[r] in one launch (block 256, as CudaTransformer launches it).</summary>
    DeviceDraw[] DrawOnDevice(float[][] rows, (SamplingOptions o, double u)[] cases)
    {
        int n = rows.Length, V = rows[0].Length;
        DevicePtr tokens = Zeros(n * 4), stats = Zeros(n * 3 * 4);
        _d.Launch("sample_rows", new Dim3((uint)n), new Dim3(256), Up(rows.SelectMany(r => r).ToArray()), V,
            Up(cases.Select(c => c.o.Temperature).ToArray()), Up(cases.Select(c => c.o.TopK).ToArray()),
            Up(cases.Select(c => c.o.TopP).ToArray()), Up(cases.Select(c => c.o.MinP).ToArray()),
            Up(cases.Select(c => c.u).ToArray()), tokens, stats);
        int[] t = Down<int>(tokens, n), s = Down<int>(stats, n * 3);
        return Enumerable.Range(0, n).Select(r => new DeviceDraw(t[r], s[3 * r], s[3 * r + 1], s[3 * r + 2] == 1)).ToArray();
    }

    /// <summary>A language model's shape of row: a few likely tokens far above a long flat tail in [-6, 6].</summary>
    float[] PeakedRow(int V, float head)
    {
        float[] row = Random(V, 6f);
        for (int j = 0; j < 12; j++) row[_rng.Next(V)] = head - j;
        return row;
    }

    void AssertHostTokens(float[][] rows, (SamplingOptions o, double u)[] cases, DeviceDraw[] got)
    {
        for (int r = 0; r < rows.Length; r++)
            Assert.That(got[r].Token, Is.EqualTo(Sampler.Sample(rows[r].ToArray(), cases[r].o, cases[r].u)), $"row {r}: {cases[r].o} u={cases[r].u}");
    }

    [Test]
    public void Peaked_rows_are_drawn_from_the_sorted_candidates_with_at_most_one_exp_pass()
    {
        SamplingOptions[] options =
        [
            new(Temperature: 1f, TopP: 0.9f), new(Temperature: 0.7f, TopP: 0.5f, MinP: 0.05f),
            new(Temperature: 1.2f, TopK: 40, TopP: 0.8f, MinP: 0.02f), new(Temperature: 1f, TopK: 3000, TopP: 0.95f),
            new(Temperature: 1f, MinP: 0.1f), new(Temperature: 0.9f, TopK: 1024), new(Temperature: 1f, TopP: 0.99999994f),
        ];
        float[] peaked = PeakedRow(LlamaVocab, 22f), spike = PeakedRow(LlamaVocab, 80f);
        var cases = (from o in options from u in new[] { 0.01, 0.45, 0.97 } select (o, u)).ToArray();
        // top_p just below 1 reaches p inside the candidates only when the tail's mass is below 1 − p.
        float[][] rows = cases.Select(c => c.o.TopP > 0.9999f ? spike : peaked).ToArray();
        DeviceDraw[] got = DrawOnDevice(rows, cases);
        AssertHostTokens(rows, cases, got);
        for (int r = 0; r < rows.Length; r++)
        {
            Assert.That(got[r].Candidates, Is.True, $"row {r}: {cases[r].o} decided by the candidates");
            Assert.That(got[r].ExpPasses, Is.LessThanOrEqualTo(1), $"row {r}: {cases[r].o}");
        }
        Assert.That(got.Where((_, r) => cases[r].o.TopK == 0).Max(d => d.PlainPasses), Is.LessThanOrEqualTo(11), "max, 8 counting passes, gather");
        Assert.That(got.Where((_, r) => cases[r].o.TopK > 0).Max(d => d.PlainPasses), Is.LessThanOrEqualTo(27),
            "max, 16 radix passes for the top-k cut, 8 counting passes, gather");
    }

    [Test]
    public void Flat_rows_fall_back_to_the_bisection_and_still_equal_the_host()
    {
        SamplingOptions[] options =
        [
            new(Temperature: 1f, TopP: 0.9f), new(Temperature: 1f, TopP: 0.5f, MinP: 0.9f), new(Temperature: 1f, TopP: 0.99999994f),
            new(Temperature: 1f, TopK: 50_000, TopP: 0.9f),
        ];
        float[] flat = Random(LlamaVocab, 0.5f);
        var cases = options.Select((o, i) => (o, u: 0.2 + 0.3 * i)).ToArray();
        float[][] rows = cases.Select(_ => flat).ToArray();
        DeviceDraw[] got = DrawOnDevice(rows, cases);
        AssertHostTokens(rows, cases, got);
        for (int r = 0; r < got.Length; r++)
        {
            DeviceDraw d = got[r];
            Assert.That(d.Candidates, Is.False, "1024 of 128k near-equal tokens cannot hold the kept set");
            Assert.That(d.ExpPasses, Is.InRange(2 * 65 + 1, 2 * 65 + 2), "the bisection: 65 passes for the top-p cut, 65 for the draw, the candidates' sum");
            Assert.That(d.PlainPasses, Is.EqualTo(1 + (cases[r].o.TopK > 0 ? 16 : 0) + 8 + 1),
                "max, 16 radix passes for the top-k cut, 8 for the candidates' floor, the gather's writing pass");
        }
    }

    [Test]
    public void Tied_logits_are_ordered_by_id_on_both_paths()
    {
        const int V = 6000;
        // 30 tokens tied at the top, 100 tied below them, then 1500 tied (a group the candidates'
        // floor must leave out whole), then a flat tail.
        float[] tied = Random(V, 1f);
        for (int i = 0; i < 1630; i++) tied[(i * 7919) % V] = i < 30 ? 9f : i < 130 ? 8f : 4f;
        float[] flatTies = Enumerable.Range(0, V).Select(i => (float)(i % 3)).ToArray();
        SamplingOptions[] options =
        [
            new(Temperature: 1f, TopP: 0.3f), new(Temperature: 1f, TopP: 0.95f), new(Temperature: 0.5f, TopK: 50, TopP: 0.7f, MinP: 0.2f),
            new(Temperature: 1f, MinP: 0.5f),
        ];
        var cases = (from o in options from u in new[] { 0.0, 0.33, 0.66, 0.999 } select (o, u)).ToArray();
        float[][] rows = [.. cases.Select(_ => tied), .. cases.Select(_ => flatTies)];
        cases = [.. cases, .. cases];
        DeviceDraw[] got = DrawOnDevice(rows, cases);
        AssertHostTokens(rows, cases, got);
        Assert.That(got.Take(got.Length / 2).Count(d => d.Candidates), Is.GreaterThan(0), "the tied peaked row takes the candidates");
        Assert.That(got.Skip(got.Length / 2).Count(d => !d.Candidates), Is.GreaterThan(0), "2000 tokens tied at the top do not fit");
    }

    [Test]
    public void Random_rows_and_options_draw_the_host_token_on_either_path()
    {
        const int V = 20_000, rows = 48;
        var cases = new (SamplingOptions o, double u)[rows];
        var logits = new float[rows][];
        for (int r = 0; r < rows; r++)
        {
            logits[r] = r % 3 == 0 ? Random(V, 1f) : PeakedRow(V, 8f + _rng.Next(20));
            cases[r] = (new SamplingOptions(Temperature: 0.3f + (float)_rng.NextDouble() * 1.5f,
                TopP: _rng.Next(4) == 0 ? 1f : 0.2f + (float)_rng.NextDouble() * 0.8f, TopK: _rng.Next(3) == 0 ? _rng.Next(1, 3000) : 0,
                MinP: _rng.Next(3) == 0 ? (float)_rng.NextDouble() * 0.3f : 0f), _rng.NextDouble());
        }
        DeviceDraw[] got = DrawOnDevice(logits, cases);
        AssertHostTokens(logits, cases, got);
        Assert.That(got.Count(d => d.Candidates), Is.InRange(1, rows - 1), "both paths ran");
    }
}
