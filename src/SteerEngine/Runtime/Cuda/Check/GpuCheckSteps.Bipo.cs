using System.Diagnostics;
using System.Text.Json.Nodes;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Runtime.Cuda.Native;
using SteerEngine.Training;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Runtime.Cuda.Check;

/// <summary>
/// One BiPO step on the device: first its gradient on <c>tiny</c> against the CPU's exact gradient (the bf16
/// tolerance) and, with the trainer's default keep budget, against itself recomputing every block (the same bits),
/// then timed steps on the 8B-shape random model (4 pairs of 256 + 256 tokens, steering layer 15) with the default
/// budget, with none and with the automatic one (the budget and blocks it chose), their peak device memory and share of the bf16 peak. Emulated, the timed steps run on <c>tiny</c>.
/// </summary>
sealed partial class GpuCheckSteps
{
    void BipoStep(GpuCheckStep step)
    {
        // Correctness first, at a size the CPU's exact path runs in a second.
        string tiny = RandomModelDir("tiny", ModelShapes.Get("tiny"));
        float[] v = Enumerable.Range(0, ModelShapes.Get("tiny").HiddenSize).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        ScoredSequence[] small = Pairs(ModelShapes.Get("tiny").VocabSize, 2, 12, 6);
        float[] want, got;
        using (Transformer cpuModel = Transformer.Load(tiny))
        using (var cpu = new CpuBipoBackend(cpuModel, CpuKernelChoice.Exact))
            want = Gradient(cpu, 1, small, v).Grad;
        float[] kept;
        using (CudaBipoBackend gpu = CudaBipoBackend.Load(tiny, CudaPlatform.Driver))
        {
            got = Gradient(gpu, 1, small, v, 0).Grad;
            kept = Gradient(gpu, 1, small, v, KeepBytes).Grad;
        }
        double maxDiff = 0, maxRef = 0, dot = 0, a2 = 0, b2 = 0;
        for (int i = 0; i < want.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)got[i] - want[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)want[i]));
            dot += (double)got[i] * want[i];
            a2 += (double)got[i] * got[i];
            b2 += (double)want[i] * want[i];
        }
        double error = maxDiff / Math.Max(maxRef, 1e-30), cosine = dot / Math.Sqrt(a2 * b2);
        step.Details["tiny_gradient"] = new JsonObject { ["relative_error"] = error, ["cosine"] = Math.Round(cosine, 6) };
        step.Lines.Add($"tiny: gradient vs the CPU exact path: relative error {error:E2}, cosine {cosine:F6}");
        if (!(error <= Bf16Tolerance) || !(cosine >= 0.999)) step.Fail($"the tiny model's BiPO gradient is off the CPU's: relative error {error:E2}, cosine {cosine:F6}");
        int keptDiffer = Enumerable.Range(0, got.Length).Count(i => BitConverter.SingleToInt32Bits(kept[i]) != BitConverter.SingleToInt32Bits(got[i]));
        step.Details["tiny_keep"] = new JsonObject { ["differing_elements"] = keptDiffer };
        step.Lines.Add($"tiny: gradient keeping activations vs recomputing every block: {keptDiffer} of {got.Length} elements differ");
        if (keptDiffer > 0) step.Fail($"keeping activations changed {keptDiffer} elements of the tiny model's BiPO gradient (it must change no bit)");

        string name = o.Emulate ? "tiny" : "llama-3.1-8b";
        ModelConfig c = ModelShapes.Get(name);
        string dir = RandomModelDir(name, c);
        double peak;
        using (var d = new DriverCudaDevice(0))
            peak = (double)d.Attribute(CudaDriverApi.AttributeMultiprocessorCount) * d.Attribute(CudaDriverApi.AttributeClockRate) * 1e3 * TensorFlopsPerClock(d.Arch);
        int layer = o.Emulate ? 1 : 15, half = o.Emulate ? 12 : 256;
        ScoredSequence[] batch = Pairs(c.VocabSize, 4, half, half);
        using CudaBipoBackend backend = CudaBipoBackend.Load(dir, CudaPlatform.Driver);
        float[] vector = Enumerable.Range(0, c.HiddenSize).Select(i => MathF.Sin(i * 0.37f) * 0.1f).ToArray();
        Gradient(backend, layer, batch, vector, KeepBytes); // warm-up: first launches, buffers grown to the batch
        long recomputed = backend.RecomputedBlocks;
        var (seconds, grad) = Gradient(backend, layer, batch, vector, KeepBytes);
        recomputed = backend.RecomputedBlocks - recomputed;
        int keptBlocks = backend.KeptBlocks;
        var (workspace, weights) = backend.PeakDeviceBytes();
        var (secondsRecomputing, gradRecomputing) = Gradient(backend, layer, batch, vector, 0);
        var (secondsAuto, gradAuto) = Gradient(backend, layer, batch, vector, BipoOptions.AutoKeep);
        int autoBlocks = backend.KeptBlocks;
        long autoBudget = backend.LastKeep?.BudgetBytes ?? 0;
        if (grad.Any(g => !float.IsFinite(g)) || grad.All(g => g == 0)) step.Fail("the 8B-shape step's gradient is zero or not finite");
        if (!grad.AsSpan().SequenceEqual(gradRecomputing)) step.Fail("the 8B-shape step's gradient differs between keeping activations and recomputing every block");
        if (!grad.AsSpan().SequenceEqual(gradAuto)) step.Fail("the 8B-shape step's gradient differs between the default and the automatic keep budget");

        long T = batch.Sum(s => s.Tokens.Length), R = batch.Sum(s => s.ResponseLength);
        long blockFlops = 2L * T * ((long)c.HiddenSize * (c.QDim + 2 * c.KvDim) + (long)c.QDim * c.HiddenSize + 3L * c.HiddenSize * c.IntermediateSize);
        // The step: the prefix (blocks 0..L), the steered forward, the backward's recomputes (every upper block without a
        // keep budget) and the input-gradient products per upper block (one product per weight matrix, as many FLOPs as
        // its forward; docs/bipo-at-scale.md), and the LM head three times (forward, recomputed, backward product).
        // Attention's own FLOPs are left out.
        long upper = c.NumLayers - 1 - layer;
        double Flops(long recomputes) => (layer + 1 + 2.0 * upper + recomputes) * blockFlops + 3 * 2.0 * R * c.VocabSize * c.HiddenSize;
        double flops = Flops(recomputed), flopsRecomputing = Flops(upper);
        step.Details["bipo_step"] = new JsonObject
        {
            ["model"] = name, ["layer"] = layer, ["pairs"] = 4, ["rows"] = T, ["response_rows"] = R, ["seconds"] = Math.Round(seconds, 4),
            ["keep_gib"] = KeepBytes / (double)(1L << 30), ["kept_blocks"] = keptBlocks, ["recomputed_blocks"] = recomputed,
            ["seconds_recomputing_every_block"] = Math.Round(secondsRecomputing, 4),
            ["auto_keep_gib"] = Math.Round(autoBudget / (double)(1L << 30), 2), ["auto_kept_blocks"] = autoBlocks, ["seconds_auto_keep"] = Math.Round(secondsAuto, 4),
            ["weights_gib"] = Math.Round(weights / (double)(1L << 30), 2), ["peak_workspace_gib"] = Math.Round(workspace / (double)(1L << 30), 2),
            ["matmul_tflop"] = Math.Round(flops / 1e12, 2), ["fraction_of_peak"] = Math.Round(flops / seconds / peak, 3),
            ["fraction_of_peak_recomputing_every_block"] = Math.Round(flopsRecomputing / secondsRecomputing / peak, 3),
        };
        step.Lines.Add($"{name}, layer {layer}, 4 pairs, {T} rows: one step (prepare, forward, backward) in {seconds:F3} s, " +
                       $"{flops / seconds / peak:P1} of the bf16 peak, keeping {keptBlocks} of {upper} upper blocks' activations and the top one's " +
                       $"({recomputed} recomputed); recomputing every block {secondsRecomputing:F3} s; --keep-mib auto {autoBudget / (double)(1L << 30):F2} GiB " +
                       $"per device, keeping {autoBlocks} blocks, {secondsAuto:F3} s; the same gradient bits each way; device memory: " +
                       $"weights {weights / (double)(1L << 30):F2} GiB + peak buffers {workspace / (double)(1L << 30):F2} GiB");
    }

    /// <summary>n pairs of random tokens: a shared prompt, chosen and rejected responses of the given lengths.</summary>
    static ScoredSequence[] Pairs(int vocab, int n, int prompt, int response)
    {
        var rng = new Random(17);
        int[] Tokens(int count) => Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
        return Enumerable.Range(0, n).SelectMany(_ =>
        {
            int[] p = Tokens(prompt);
            return new[] { new ScoredSequence([.. p, .. Tokens(response)], prompt), new ScoredSequence([.. p, .. Tokens(response)], prompt) };
        }).ToArray();
    }

    /// <summary>The trainer's default keep budget (<see cref="BipoOptions.KeepBytes"/>).</summary>
    static readonly long KeepBytes = new BipoOptions().KeepBytes;

    /// <summary>
    /// One step's gradient at β = 0.1 (the reference log-probs computed first, outside the timing) and its seconds;
    /// keepBytes as <see cref="IBipoBackend.At"/> takes it.
    /// </summary>
    static (double Seconds, float[] Grad) Gradient(IBipoBackend backend, int layer, ScoredSequence[] batch, float[] v, long keepBytes = 0)
    {
        double[] refs = BipoObjective.ReferenceLogProbs(backend.At(backend.Config.NumLayers - 1).Prepare(batch), backend.Config.HiddenSize);
        var grad = new float[v.Length];
        var clock = Stopwatch.StartNew();
        BipoObjective.Evaluate(backend.At(layer, keepBytes).Prepare(batch), v, 1, 0.1, refs, grad);
        return (clock.Elapsed.TotalSeconds, grad);
    }
}
