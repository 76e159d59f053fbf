using SteerEngine.Model;

namespace SteerEngine.Runtime;

/// <summary>
/// The machine's measured limits: streaming read bandwidth, the f32 FMA peak, and the compute peak
/// available to bf16-weight products (<see cref="Bf16Gflops"/>: the faster of the bf16 dot-product
/// instruction and f32 FMA on widened weights; <see cref="Bf16DotGflops"/> is the instruction alone).
/// </summary>
public sealed record MachineLimits(double ReadGBs, double F32Gflops, double Bf16Gflops)
{
    public double Bf16DotGflops { get; init; } = Bf16Gflops;
}

/// <summary>
/// What a model costs per token and the best throughput the machine's limits allow. Matrix products
/// count 2 flops per multiply-add; weights are read as bf16 (2 bytes); the KV cache is f32.
/// </summary>
public sealed class Roofline(ModelConfig c)
{
    /// <summary>Weights used as matrix products per token (the lm_head included, tied or not).</summary>
    public long MatmulParameters { get; } =
        (long)c.NumLayers * ((long)c.HiddenSize * c.QDim * 2 + (long)c.HiddenSize * c.KvDim * 2 + 3L * c.HiddenSize * c.IntermediateSize)
        + (long)c.VocabSize * c.HiddenSize;

    /// <summary>Flops of one token attending to <paramref name="context"/> earlier positions (QKᵀ and PV, all layers).</summary>
    public double AttentionFlops(double context) => 4.0 * c.NumLayers * c.QDim * context;

    public long LmHeadParameters { get; } = (long)c.VocabSize * c.HiddenSize;

    /// <summary>
    /// Prefill of a T-token prompt: tok/s at the bf16 compute peak. Each token attends to (T+1)/2
    /// positions on average, and only the last token needs the lm_head.
    /// </summary>
    public double PrefillTokS(MachineLimits m, int tokens) =>
        m.Bf16Gflops * 1e9 / (2.0 * (MatmulParameters - LmHeadParameters) + 2.0 * LmHeadParameters / tokens + AttentionFlops((tokens + 1) / 2.0));

    /// <summary>
    /// A decode step of <paramref name="batch"/> sequences with <paramref name="context"/> cached tokens each:
    /// the step reads every weight once and each sequence's cache, and computes batch tokens' flops;
    /// whichever takes longer bounds it.
    /// </summary>
    public double DecodeTokS(MachineLimits m, int batch, int context)
    {
        double bytes = 2.0 * MatmulParameters + (double)batch * context * c.NumLayers * 2 * c.KvDim * 4;
        double flops = batch * (2.0 * MatmulParameters + AttentionFlops(context));
        double seconds = Math.Max(bytes / (m.ReadGBs * 1e9), flops / (m.Bf16Gflops * 1e9));
        return batch / seconds;
    }

    /// <summary>Which limit binds a decode step: "bandwidth" or "bf16 compute".</summary>
    public string DecodeBound(MachineLimits m, int batch, int context)
    {
        double bytes = 2.0 * MatmulParameters + (double)batch * context * c.NumLayers * 2 * c.KvDim * 4;
        double flops = batch * (2.0 * MatmulParameters + AttentionFlops(context));
        return bytes / (m.ReadGBs * 1e9) >= flops / (m.Bf16Gflops * 1e9) ? "bandwidth" : "bf16 compute";
    }
}
