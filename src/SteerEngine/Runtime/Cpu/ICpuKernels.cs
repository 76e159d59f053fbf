using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// The fast CPU kernels of the forward pass: bf16 weights packed once at load, f32 activations.
/// Two implementations share every signature and the packed layout: <see cref="NativeCpuKernels"/>
/// (libsteer_cpu, AVX512_BF16 / AVX-512 / AVX2) and <see cref="ManagedCpuKernels"/> (Vector512 or
/// Vector256 / TensorPrimitives). Both round x to bf16 the same way and compute the same f32 chain per
/// GEMM output, so their MatMul agrees bit for bit (but for native's flushed denormals); the other
/// kernels agree to f32 summation order.
/// <para>Intended call sequence, per model and per forward step (T rows = tokens of the batch):</para>
/// <code>
/// load:   every WeightMatrix w → Pack(w)                     (once, tensor by tensor from the mmap)
/// block:  RmsNorm(x → xn); MatMul(xn, Wq → q), (Wk → k), (Wv → v)
///         [Qwen3: RmsNorm(q, qNorm) over T·nh rows, RmsNorm(k, kNorm) over T·nkv rows]
///         Rope(q, T, nh, …, positions); Rope(k, T, nkv, …, positions)
///         write k, v rows into each sequence's cache; Attention(q → att, sequences)
///         MatMul(att, Wo → delta); ResidualAddSteered(x, delta, no steering)
///         RmsNorm(x → xn); MatMul(xn, Wgate → gate), (Wup → up); SwiGlu(gate, up)
///         MatMul(gate, Wdown → delta); ResidualAddSteered(x, delta, this layer's RowSteering)
/// head:   RmsNorm(x, final); MatMul(x rows, lm_head → logits); LogSoftmax(logits) when scoring
/// </code>
/// Buffers are row-major; shapes are in each parameter's comment.
/// </summary>
public interface ICpuKernels
{
    string Name { get; }

    /// <summary>Repacks W (out, in) for MatMul. The caller owns (disposes) the result.</summary>
    PackedMatrix Pack(WeightMatrix w);

    /// <summary>y = x · Wᵀ, x rounded to bf16. x: (rows, w.Cols); y: (rows, w.Rows)</summary>
    void MatMul(ReadOnlySpan<float> x, PackedMatrix w, Span<float> y, int rows);

    /// <summary>y = x · rsqrt(mean(x²) + eps) · weight per row. x, y: (rows, n), may alias; weight: (n)</summary>
    void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int rows, float eps);

    /// <summary>Rotary embedding in place (HF rotate-half). x: (rows, heads·hd); positions: (rows); invFreq: (hd/2)</summary>
    void Rope(Span<float> x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq);

    /// <summary>gate ← silu(gate) · up. gate, up: (rows, I)</summary>
    void SwiGlu(Span<float> gate, ReadOnlySpan<float> up);

    /// <summary>x ← x + delta (skipped when delta is empty), then each row's steering adds. x, delta: (rows, hidden)</summary>
    void ResidualAddSteered(Span<float> x, ReadOnlySpan<float> delta, int rows, int hidden, RowSteering steering);

    /// <summary>Causal GQA for a batch of sequences, prefill and decode alike. q, output: (T, nh·hd)</summary>
    void Attention(ReadOnlySpan<float> q, Span<float> output, ReadOnlySpan<AttentionSequence> sequences, int heads, int kvHeads, int headDim);

    /// <summary>output = log_softmax(logits) per row. logits, output: (rows, V), may alias</summary>
    void LogSoftmax(ReadOnlySpan<float> logits, Span<float> output, int rows);
}
