using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;
using SteerEngine.Training;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Tests.Training;

/// <summary>
/// The automatic keep budget (<see cref="BipoOptions.AutoKeep"/>) on emulated devices of a chosen size: a device that
/// has, beside the margin, exactly the memory a pass keeping k blocks holds (measured with a fixed budget of k blocks
/// on a fresh backend) keeps k blocks, one byte less keeps k − 1, and the gradient is the bits of recomputing every block.
/// </summary>
[TestFixture]
public class CudaBipoAutoKeepTests
{
    /// <summary>On a device under 10 GiB the margin is its floor, 1 GiB (<see cref="CudaBipoRank.AutoKeepMargin"/>).</summary>
    const long Margin = 1L << 30;

    sealed record Run(int Kept, long Recomputes, float[] Grad, long MostUsed, long Budget);

    /// <summary>One BiPO step on fresh emulated devices of <paramref name="deviceBytes"/> each, keeping within <paramref name="keepBytes"/>.</summary>
    static Run Step(string dir, int tp, int layer, long keepBytes, long deviceBytes, ScoredSequence[] seqs, double[] refs, float[] v)
    {
        using CudaBipoBackend cuda = CudaBipoBackend.Load(dir, CudaPlatform.Emulated, tp, emulatedDeviceBytes: deviceBytes);
        var grad = new float[v.Length];
        BipoObjective.Evaluate(cuda.At(layer, keepBytes).Prepare(seqs), v, 1, 0.1, refs, grad);
        long used = cuda.DeviceMemory().Max(m => m.Total - m.Free);
        return new Run(cuda.KeptBlocks, cuda.RecomputedBlocks, grad, used, cuda.LastKeep?.BudgetBytes ?? -1);
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Auto_keeps_the_blocks_that_fit_each_device_after_the_pass_and_the_margin(int tp)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.Get("tiny");
        ModelConfig c = ModelConfig.Load(Path.Combine(dir, "config.json"));
        ScoredSequence[] seqs = BipoGradientTests.MixedBatch(c.VocabSize, 4);
        float[] v = Compare.RandomVector(new Random(8), c.HiddenSize, 1f);
        const int layer = 0;
        int upper = c.NumLayers - 1 - layer, rows = seqs.Sum(s => s.Tokens.Length);
        long block = CudaBipoBackend.KeptBlockBytes(c, tp, rows);
        double[] refs;
        using (CudaBipoBackend cuda = CudaBipoBackend.Load(dir, CudaPlatform.Emulated, tp))
            refs = BipoObjective.ReferenceLogProbs(cuda.At(c.NumLayers - 1).Prepare(seqs), c.HiddenSize);
        Assume.That(upper, Is.GreaterThanOrEqualTo(3), "needs none, some and all of at least two lower blocks");
        const long big = 80L << 30;
        float[] recomputed = Step(dir, tp, layer, 0, big, seqs, refs, v).Grad;
        Assert.That(recomputed.Any(g => g != 0));

        foreach (int k in new[] { 0, 1, upper - 1 })
        {
            Run fixedK = Step(dir, tp, layer, k * block, big, seqs, refs, v);
            Assert.That(fixedK.Kept, Is.EqualTo(k));
            Run fits = Step(dir, tp, layer, BipoOptions.AutoKeep, fixedK.MostUsed + Margin, seqs, refs, v);
            TestContext.Out.WriteLine($"tp {tp}, k {k}: a pass keeping {k} blocks holds {fixedK.MostUsed} bytes on its fullest device; " +
                                      $"auto on {fixedK.MostUsed + Margin} bytes keeps {fits.Kept} (budget {fits.Budget}, a block {block})");
            Assert.That(fits.Kept, Is.EqualTo(k), "blocks kept when exactly k fit");
            Assert.That(fits.Recomputes, Is.EqualTo((long)(upper - 1 - k) * tp), "the top block and the kept ones are not recomputed");
            Assert.That(fits.MostUsed, Is.EqualTo(fixedK.MostUsed), "auto holds what the fixed budget held");
            Assert.That(fits.Budget, Is.GreaterThanOrEqualTo(k * block).And.LessThan((k + 1) * block + 4096));
            Assert.That(fits.Grad.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(recomputed.Select(BitConverter.SingleToInt32Bits)), "gradient bits");
            if (k == 0) continue;
            Run short1 = Step(dir, tp, layer, BipoOptions.AutoKeep, fixedK.MostUsed + Margin - 1, seqs, refs, v);
            Assert.That(short1.Kept, Is.EqualTo(k - 1), "one byte short of k blocks");
            Assert.That(short1.Grad.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(recomputed.Select(BitConverter.SingleToInt32Bits)), "gradient bits");
        }
        Assert.That(Step(dir, tp, layer, BipoOptions.AutoKeep, Margin, seqs, refs, v).Kept, Is.EqualTo(0), "a device with no room keeps none");
    }

    [Test]
    public void Auto_is_a_valid_keep_budget_and_no_other_negative_one_is()
    {
        Assert.That(new BipoOptions { KeepBytes = BipoOptions.AutoKeep }.Validate, Throws.Nothing);
        Assert.That(new BipoOptions { KeepBytes = -2 }.Validate, Throws.ArgumentException);
        Assert.That(BipoOptions.DefaultKeepBytes, Is.EqualTo(new BipoOptions().KeepBytes));
    }
}
