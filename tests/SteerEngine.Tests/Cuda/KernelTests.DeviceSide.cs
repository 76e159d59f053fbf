using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

// The kernels that keep sampling and capture on the device, against their host references, at
// sizes that are not multiples of the block (run on the real device by gpu-check too).
public partial class KernelTests
{
    [Test]
    public void Vocab_slices_of_three_ranks_join_into_whole_rows()
    {
        const int ranks = 3, rows = 4, vocab = 301, slice = (vocab + ranks - 1) / ranks, n = 3;
        float[] whole = Random(rows * vocab);
        var slices = new float[ranks * rows * slice]; // the all-gather's (ranks, rows, slice), the last slice padded
        for (int k = 0; k < ranks; k++)
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < slice && k * slice + j < vocab; j++) slices[(k * rows + r) * slice + j] = whole[r * vocab + k * slice + j];
        DevicePtr output = Zeros(n * vocab * 4);
        _d.Launch("join_vocab_slices", new Dim3(n), new Dim3(64), Up(slices), rows, slice, vocab, output);
        Assert.That(Down<float>(output, n * vocab), Is.EqualTo(whole[..(n * vocab)]));
    }

    [Test]
    public void Repetition_penalty_rows_match_the_host_sampler()
    {
        const int rows = 3, vocab = 517;
        float[] logits = Random(rows * vocab, 4f);
        float[] penalty = [1.3f, 1f, 0.6f];
        int[][] history = [[0, 5, 516, 77], [1, 2, 3], [400, 9]];
        int[] start = [0, 4, 7, 9];
        DevicePtr l = Up(logits);
        _d.Launch("repetition_penalty_rows", new Dim3(rows), new Dim3(32), l, vocab, Up(penalty), Up(start), Up(history.SelectMany(h => h).ToArray()));
        float[] got = Down<float>(l, rows * vocab);
        for (int r = 0; r < rows; r++)
        {
            float[] want = logits[(r * vocab)..((r + 1) * vocab)];
            Sampler.ApplyRepetitionPenalty(want, new SamplingOptions(RepetitionPenalty: penalty[r]), history[r]);
            Assert.That(got[(r * vocab)..((r + 1) * vocab)], Is.EqualTo(want), $"row {r}");
        }
    }

    [Test]
    public void Row_projections_and_masked_sums_match_the_host_reductions()
    {
        const int rows = 9, hidden = 300;
        float[] x = Random(rows * hidden, 2f);
        float[][] dirs = [Random(hidden), Random(hidden)];
        int[][] masks = [[0, 3, 8], [], [1, 2, 4, 5, 6, 7], [8]];
        var plan = new StateReductions(new BatchLayout(new int[rows], Enumerable.Range(0, rows).ToArray()), [dirs], masks);
        ReducedStates want = plan.Reduce(0, x, hidden);

        DevicePtr states = Up(x), projections = Zeros(rows * dirs.Length * 4), sums = Zeros(masks.Length * hidden * 4);
        _d.Launch("project_rows", new Dim3(rows), new Dim3(96), states, hidden, Up(dirs.SelectMany(d => d).ToArray()), dirs.Length, projections);
        int[] start = masks.Select(m => m.Length).Prepend(0).ToArray();
        for (int m = 0; m < masks.Length; m++) start[m + 1] += start[m];
        _d.Launch("sum_rows_by_mask", new Dim3((hidden + 127) / 128, (uint)masks.Length), new Dim3(128), states, hidden, Up(start),
            Up(masks.SelectMany(m => m).Append(0).ToArray()), sums);
        Assert.That(Compare.RelativeMaxError(Down<float>(projections, rows * dirs.Length), want.Projections), Is.LessThan(1e-5));
        Assert.That(Down<float>(sums, masks.Length * hidden), Is.EqualTo(want.Sums).Within(1e-6));
    }
}
