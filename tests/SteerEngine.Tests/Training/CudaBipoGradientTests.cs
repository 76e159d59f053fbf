using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Tests.Support;
using SteerEngine.Training;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Tests.Training;

/// <summary>
/// BiPO's gradient on the CUDA backend (emulated devices: the same kernels/*.cu, GEMMs as cuBLAS defines them,
/// NCCL-like collectives) against the CPU's exact f32 gradient, within the bf16 tolerance: relative error ≤ 2e-2
/// and cosine ≥ 0.999, at one device and tensor- and data-parallel.
/// </summary>
[TestFixture]
public class CudaBipoGradientTests
{
    static (double Loss, float[] Grad, double[] LogProbs) Run(IBipoBackend backend, int layer, ScoredSequence[] seqs, float[] v, int direction)
    {
        double[] refs = BipoObjective.ReferenceLogProbs(backend.At(backend.Config.NumLayers - 1).Prepare(seqs), backend.Config.HiddenSize);
        ISteeredBatch batch = backend.At(layer).Prepare(seqs);
        var grad = new float[v.Length];
        BipoBatchResult r = BipoObjective.Evaluate(batch, v, direction, 0.1, refs, grad);
        return (r.Loss, grad, r.Pairs.SelectMany(p => new[] { p.PolicyChosen, p.PolicyRejected }).ToArray());
    }

    [TestCase("tiny", 1, 1, 1, 1)]
    [TestCase("qwen3-tiny", 0, -1, 1, 1)]
    [TestCase("tiny", 0, -1, 2, 1)]
    [TestCase("qwen3-tiny", 1, 1, 1, 2)]
    [TestCase("tiny", 1, 1, 2, 2)]
    public void Cuda_gradient_matches_the_exact_cpu_gradient_within_the_bf16_tolerance(string shape, int layer, int direction, int tp, int dp)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.Get(shape);
        using Transformer model = Transformer.Load(dir);
        ScoredSequence[] seqs = BipoGradientTests.MixedBatch(model.Config.VocabSize, 4);
        float[] v = Compare.RandomVector(new Random(6), model.Config.HiddenSize, 1f);
        using var cpu = new CpuBipoBackend(model, CpuKernelChoice.Exact);
        var exact = Run(cpu, layer, seqs, v, direction);
        using CudaBipoBackend cuda = CudaBipoBackend.Load(dir, CudaPlatform.Emulated, tp, dp);
        var device = Run(cuda, layer, seqs, v, direction);

        double error = Compare.RelativeMaxError(device.Grad, exact.Grad), cosine = Compare.Cosine(device.Grad, exact.Grad);
        TestContext.Out.WriteLine($"{shape} L={layer} d={direction} tp={tp} dp={dp}: loss {device.Loss:G6} vs {exact.Loss:G6}; grad rel. error {error:E2}, cosine {cosine:F6}");
        Assert.That(exact.Grad.Any(g => g != 0));
        Assert.That(error, Is.LessThanOrEqualTo(2e-2));
        Assert.That(cosine, Is.GreaterThanOrEqualTo(0.999));
        Assert.That(device.LogProbs, Is.EqualTo(exact.LogProbs).Within(2).Percent);
        Assert.That(device.Loss, Is.EqualTo(exact.Loss).Within(2).Percent);
    }
}
