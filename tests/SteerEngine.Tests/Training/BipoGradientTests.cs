using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Tests.Support;
using SteerEngine.Training;

namespace SteerEngine.Tests.Training;

/// <summary>The hand-written gradient of the BiPO loss against torch autograd and float64 finite differences.</summary>
[TestFixture]
public class BipoGradientTests
{
    /// <summary>Two pairs with different prompt and response lengths: (chosen, rejected) share a prompt.</summary>
    internal static ScoredSequence[] MixedBatch(int vocab, int seed)
    {
        var rng = new Random(seed);
        var list = new List<ScoredSequence>();
        foreach (var (prompt, chosen, rejected) in new[] { (7, 3, 5), (3, 6, 1) })
        {
            int[] p = Compare.RandomTokens(rng, prompt, vocab);
            list.Add(new ScoredSequence([.. p, .. Compare.RandomTokens(rng, chosen, vocab)], prompt));
            list.Add(new ScoredSequence([.. p, .. Compare.RandomTokens(rng, rejected, vocab)], prompt));
        }
        return [.. list];
    }

    static (double Loss, float[] Grad, double[] LogProbs, double[] Ref) Engine(Transformer model, int layer, ScoredSequence[] seqs,
        float[] v, int direction, double beta, WeightProducts? products = null)
    {
        var slp = new SteeredLogProb(model, layer, products);
        SequenceBatch batch = slp.Batch(seqs);
        float[] prefix = slp.Prefix(batch);
        double[] refLogProbs = BipoObjective.ReferenceLogProbs(slp, batch, prefix);
        var grad = new float[v.Length];
        BipoBatchResult r = BipoObjective.Evaluate(slp, batch, prefix, v, direction, beta, refLogProbs, grad);
        double[] logProbs = r.Pairs.SelectMany(p => new[] { p.PolicyChosen, p.PolicyRejected }).ToArray();
        return (r.Loss, grad, logProbs, refLogProbs);
    }

    [TestCase("tiny", 1, 1)]
    [TestCase("tiny", 1, -1)]
    [TestCase("qwen3-tiny", 0, 1)]
    [TestCase("qwen3-tiny", 0, -1)]
    public void Gradient_matches_torch_autograd_for_mixed_lengths(string shape, int layer, int direction)
    {
        string dir = TestModels.Get(shape);
        using Transformer model = Transformer.Load(dir);
        int H = model.Config.HiddenSize;
        ScoredSequence[] seqs = MixedBatch(model.Config.VocabSize, 3);
        float[] v = Compare.RandomVector(new Random(5), H, 2f);
        // A large beta puts the loss well away from its linear regime, so the pairs' weights differ.
        const double beta = 0.5;
        var (loss, grad, logProbs, refLogProbs) = Engine(model, layer, seqs, v, direction, beta);

        BipoOracle.Result torch = BipoOracle.Run(dir, seqs.Select(s => s.Tokens).ToArray(), seqs.Select(s => s.PromptLength).ToArray(),
            layer, direction, beta, v, refLogProbs);
        double gradError = Compare.RelativeMaxError(grad, torch.Grad);
        TestContext.Out.WriteLine($"{shape} L={layer} d={direction}: loss {loss:G6} vs {torch.Loss:G6}; grad rel. error {gradError:E2}");
        Assert.That(logProbs.Select(x => (float)x).ToArray(), Is.EqualTo(torch.LogProbs).Within(1e-3).Percent);
        Assert.That(loss, Is.EqualTo(torch.Loss).Within(1e-3).Percent);
        Assert.That(gradError, Is.LessThanOrEqualTo(1e-3));
    }

    /// <summary>
    /// The packed bf16 path (native and managed GEMM, transposed packs in the backward) against torch autograd in
    /// f32, with the reference log-probs torch computes itself: the bf16 tolerance, relative error ≤ 2e-2 and
    /// cosine ≥ 0.999. At BiPO's β = 0.1: a large β with a saturated sigmoid scales the gradient by 1 − σ, which
    /// magnifies the log-probs' bf16 error (its direction still agrees).
    /// </summary>
    [TestCase("tiny", 1, "native", 1)]
    [TestCase("qwen3-tiny", 0, "native", -1)]
    [TestCase("qwen3-tiny", 1, "managed", 1)]
    public void Fast_gradient_matches_torch_autograd_within_the_bf16_tolerance(string shape, int layer, string kernels, int direction)
    {
        string dir = TestModels.Get(shape);
        using Transformer model = Transformer.Load(dir);
        using WeightProducts products = WeightProducts.Create(CpuKernels.Parse(kernels));
        if (products.Name != kernels) Assert.Ignore($"{kernels} kernels are not available here");
        int H = model.Config.HiddenSize;
        ScoredSequence[] seqs = MixedBatch(model.Config.VocabSize, 4);
        float[] v = Compare.RandomVector(new Random(6), H, 1f);
        var (loss, grad, _, _) = Engine(model, layer, seqs, v, direction, 0.1, products);
        BipoOracle.Result torch = BipoOracle.Run(dir, seqs.Select(s => s.Tokens).ToArray(), seqs.Select(s => s.PromptLength).ToArray(),
            layer, direction, 0.1, v, refLogProbs: null);
        double gradError = Compare.RelativeMaxError(grad, torch.Grad);
        double dot = 0, a2 = 0, b2 = 0;
        for (int i = 0; i < H; i++) { dot += (double)grad[i] * torch.Grad[i]; a2 += (double)grad[i] * grad[i]; b2 += (double)torch.Grad[i] * torch.Grad[i]; }
        double cosine = dot / Math.Sqrt(a2 * b2);
        TestContext.Out.WriteLine($"{shape} L={layer} {kernels} d={direction}: loss {loss:G6} vs {torch.Loss:G6}; grad rel. error {gradError:E2}, cosine {cosine:F6}");
        Assert.That(gradError, Is.LessThanOrEqualTo(2e-2));
        Assert.That(cosine, Is.GreaterThanOrEqualTo(0.999));
        Assert.That(loss, Is.EqualTo(torch.Loss).Within(2).Percent);
    }

    /// <summary>
    /// Keeping the upper blocks' activations and the head's softmax from the forward computes the same ops as
    /// recomputing them, so the gradient is bitwise the same, also when another pass overwrote what was kept.
    /// </summary>
    [TestCase("tiny", "exact")]
    [TestCase("qwen3-tiny", "native")]
    [TestCase("tiny", "managed")]
    public void Kept_activations_give_the_recomputed_gradient_bit_for_bit(string shape, string kernels)
    {
        using Transformer model = Transformer.Load(TestModels.Get(shape));
        using WeightProducts products = WeightProducts.Create(CpuKernels.Parse(kernels));
        ScoredSequence[] seqs = MixedBatch(model.Config.VocabSize, 8), other = MixedBatch(model.Config.VocabSize, 9);
        float[] v = Compare.RandomVector(new Random(10), model.Config.HiddenSize, 1f);
        double[] dLogProb = [0.3, -0.2, 0.1, -0.4];
        float[] Grad(long keepBytes, bool interleave)
        {
            var slp = new SteeredLogProb(model, 0, products, keepBytes);
            SequenceBatch batch = slp.Batch(seqs), otherBatch = slp.Batch(other);
            SteeredPass pass = slp.Forward(batch, slp.Prefix(batch), v, 1);
            if (interleave) slp.Forward(otherBatch, slp.Prefix(otherBatch), v, -1);
            var grad = new float[v.Length];
            pass.Backward(dLogProb, grad);
            return grad;
        }
        float[] recomputed = Grad(0, false);
        Assert.That(recomputed.Any(g => g != 0));
        Assert.That(Grad(1L << 30, false), Is.EqualTo(recomputed), "kept");
        Assert.That(Grad(1L << 30, true), Is.EqualTo(recomputed), "kept, then overwritten by another pass");
    }

    [TestCase("tiny", 1)]
    [TestCase("qwen3-tiny", 0)]
    public void Gradient_agrees_with_float64_central_differences(string shape, int layer)
    {
        string dir = TestModels.Get(shape);
        using Transformer model = Transformer.Load(dir);
        int H = model.Config.HiddenSize;
        ScoredSequence[] seqs = MixedBatch(model.Config.VocabSize, 7);
        float[] v = Compare.RandomVector(new Random(9), H, 2f);
        const double beta = 0.5;
        foreach (int direction in new[] { 1, -1 })
        {
            var (_, grad, _, refLogProbs) = Engine(model, layer, seqs, v, direction, beta);
            BipoOracle.Result fd = BipoOracle.Run(dir, seqs.Select(s => s.Tokens).ToArray(), seqs.Select(s => s.PromptLength).ToArray(),
                layer, direction, beta, v, refLogProbs, dtype: "float64", fdDirections: 4);
            double norm = Math.Sqrt(grad.Sum(g => (double)g * g));
            for (int k = 0; k < fd.Fd.Length; k++)
            {
                double analytic = fd.FdDirections[k].Zip(grad, (u, g) => (double)u * g).Sum();
                double error = Math.Abs(analytic - fd.Fd[k]) / norm;
                TestContext.Out.WriteLine($"{shape} d={direction} direction {k}: grad·u {analytic:E4}, float64 FD {fd.Fd[k]:E4}, |Δ|/|grad| {error:E2}");
                Assert.That(error, Is.LessThanOrEqualTo(1e-3));
            }
        }
    }
}

[TestFixture]
public class BipoMemoryTests
{
    [Test]
    public void Peak_step_memory_for_the_8B_shape_at_512_tokens_batch_4_is_what_the_trainer_documents()
    {
        ModelConfig c = ModelShapes.Get("llama-3.1-8b");
        const long rows = 4 * 2 * 512, responseRows = rows - 8;
        double middle = SteeredLogProb.PeakBytes(c, rows, responseRows, layer: 15, threads: 2) / (double)(1L << 30);
        double worst = SteeredLogProb.PeakBytes(c, rows, responseRows, layer: 0, threads: 2) / (double)(1L << 30);
        TestContext.Out.WriteLine($"8B, T = {rows}: layer 15 {middle:F2} GiB, layer 0 {worst:F2} GiB");
        Assert.That(middle, Is.EqualTo(2.7).Within(0.05));
        Assert.That(worst, Is.EqualTo(3.7).Within(0.05));
    }
}
