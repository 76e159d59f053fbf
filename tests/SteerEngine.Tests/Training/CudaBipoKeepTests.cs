using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;
using SteerEngine.Training;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Tests.Training;

/// <summary>
/// The CUDA backward with a keep budget (emulated devices): the blocks it keeps are not recomputed — fewer block
/// forwards and fewer launches — and the loss, log-probs and gradient are the same bits as recomputing every block.
/// </summary>
[TestFixture]
public class CudaBipoKeepTests
{
    /// <summary>One BiPO step at <paramref name="keepBytes"/>, with the block recomputes and launches it took.</summary>
    static (double Loss, float[] Grad, double[] LogProbs, long Recomputes, long Launches, int Kept) Step(
        CudaBipoBackend backend, int layer, long keepBytes, ScoredSequence[] seqs, double[] refs, float[] v, int direction)
    {
        ISteeredBatch batch = backend.At(layer, keepBytes).Prepare(seqs);
        long recomputes = backend.RecomputedBlocks, launches = backend.Launches;
        var grad = new float[v.Length];
        BipoBatchResult r = BipoObjective.Evaluate(batch, v, direction, 0.1, refs, grad);
        return (r.Loss, grad, r.Pairs.SelectMany(p => new[] { p.PolicyChosen, p.PolicyRejected }).ToArray(),
            backend.RecomputedBlocks - recomputes, backend.Launches - launches, backend.KeptBlocks);
    }

    [TestCase("tiny", 0, 1)]
    [TestCase("tiny", 0, 2)]
    [TestCase("qwen3-tiny", 0, 1)]
    [TestCase("qwen3-tiny", 0, 2)]
    public void Keeping_skips_the_recomputes_and_gives_the_same_bits(string shape, int layer, int tp)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.Get(shape);
        ModelConfig c = ModelConfig.Load(Path.Combine(dir, "config.json"));
        ScoredSequence[] seqs = BipoGradientTests.MixedBatch(c.VocabSize, 4);
        float[] v = Compare.RandomVector(new Random(6), c.HiddenSize, 1f);
        using CudaBipoBackend cuda = CudaBipoBackend.Load(dir, CudaPlatform.Emulated, tp);
        double[] refs = BipoObjective.ReferenceLogProbs(cuda.At(c.NumLayers - 1).Prepare(seqs), c.HiddenSize);
        int upper = c.NumLayers - 1 - layer, rows = seqs.Sum(s => s.Tokens.Length);
        long block = cuda.KeptBlockBytes(rows);

        var recompute = Step(cuda, layer, 0, seqs, refs, v, 1);
        long peakRecompute = cuda.PeakDeviceBytes().Workspace;
        var one = Step(cuda, layer, block, seqs, refs, v, 1);          // the lowest upper block kept, the top one left in place
        var under = Step(cuda, layer, block - 1, seqs, refs, v, 1);    // no room for a block: only the top one is skipped
        var all = Step(cuda, layer, 1L << 30, seqs, refs, v, 1);
        long peakAll = cuda.PeakDeviceBytes().Workspace;
        TestContext.Out.WriteLine($"{shape} L={layer} tp={tp}: {upper} upper blocks, {block} bytes a kept block per device; " +
                                  $"recomputes/launches per step: keep 0 {recompute.Recomputes}/{recompute.Launches}, one block {one.Recomputes}/{one.Launches}, " +
                                  $"all {all.Recomputes}/{all.Launches}; peak workspace {peakRecompute} → {peakAll} bytes per device");

        Assert.That(recompute.Kept, Is.EqualTo(0));
        Assert.That(recompute.Recomputes, Is.EqualTo((long)upper * tp));
        Assert.That(one.Kept, Is.EqualTo(Math.Min(1, upper - 1)));
        Assert.That(one.Recomputes, Is.EqualTo((long)(upper - 1 - one.Kept) * tp));
        Assert.That(under.Kept, Is.EqualTo(0));
        Assert.That(under.Recomputes, Is.EqualTo((long)(upper - 1) * tp));
        Assert.That(all.Kept, Is.EqualTo(upper - 1));
        Assert.That(all.Recomputes, Is.EqualTo(0));
        Assert.That(all.Launches, Is.LessThan(recompute.Launches));
        Assert.That(peakAll - peakRecompute, Is.GreaterThanOrEqualTo((upper - 1) * block), "the kept blocks' buffers are in the workspace's bytes");
        Assert.That(recompute.Grad.Any(g => g != 0));
        foreach (var kept in new[] { one, under, all })
        {
            Assert.That(kept.Grad.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(recompute.Grad.Select(BitConverter.SingleToInt32Bits)), "gradient bits");
            Assert.That(BitConverter.DoubleToInt64Bits(kept.Loss), Is.EqualTo(BitConverter.DoubleToInt64Bits(recompute.Loss)), "loss bits");
            Assert.That(kept.LogProbs.Select(BitConverter.DoubleToInt64Bits), Is.EqualTo(recompute.LogProbs.Select(BitConverter.DoubleToInt64Bits)), "log-prob bits");
        }
    }
}
