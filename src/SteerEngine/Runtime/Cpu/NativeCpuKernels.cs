using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>The forward-pass kernels on libsteer_cpu; see <see cref="ICpuKernels"/>.</summary>
public sealed unsafe class NativeCpuKernels : ICpuKernels
{
    /// <param name="threads">thread pool size; 0 = one per CPU</param>
    public NativeCpuKernels(int threads = 0)
    {
        if (!NativeCpu.IsAvailable)
            throw new InvalidOperationException("libsteer_cpu was not found: run ./build.sh, or set STEER_NATIVE_DIR to the folder holding it");
        if (threads > 0 || NativeCpu.Threads() <= 0) NativeCpu.Init(threads);
    }

    const int MaxVectors = 4096; // the pointer table lives on the stack

    public string Name => "native";

    public PackedMatrix Pack(WeightMatrix w)
    {
        var packed = new PackedMatrix(w.Name, w.Rows, w.Cols);
        switch (w.DType)
        {
            case DType.BF16: NativeCpu.PackBf16((ushort*)w.Data, w.Rows, w.Cols, packed.Data); break;
            case DType.F16: NativeCpu.PackF16((ushort*)w.Data, w.Rows, w.Cols, packed.Data); break;
            case DType.F32: NativeCpu.PackF32((float*)w.Data, w.Rows, w.Cols, packed.Data); break;
            default:
                packed.Dispose();
                throw new NotSupportedException($"{w.Name}: cannot pack weights of type {w.DType}");
        }
        return packed;
    }

    public void MatMul(ReadOnlySpan<float> x, PackedMatrix w, Span<float> y, int rows)
    {
        Check.Length(x, (long)rows * w.Cols, "x", w.Name);
        Check.Length(y, (long)rows * w.Rows, "y", w.Name);
        fixed (float* xp = x, yp = y) NativeCpu.Gemm(xp, rows, w.Cols, w.Data, w.Rows, yp);
    }

    public void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int rows, float eps)
    {
        int n = weight.Length;
        Check.Length(x, (long)rows * n, "x", "RmsNorm");
        Check.Length(y, (long)rows * n, "y", "RmsNorm");
        fixed (float* xp = x, wp = weight, yp = y) NativeCpu.RmsNorm(xp, wp, yp, rows, n, eps);
    }

    public void Rope(Span<float> x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq)
    {
        Check.Length(x, (long)rows * heads * headDim, "x", "Rope");
        Check.Length(positions, rows, "positions", "Rope");
        Check.Length(invFreq, headDim / 2, "invFreq", "Rope");
        fixed (float* xp = x, fp = invFreq)
        fixed (int* pp = positions)
            NativeCpu.Rope(xp, rows, heads, headDim, pp, fp);
    }

    public void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        Check.Length(up, gate.Length, "up", "SwiGlu");
        fixed (float* gp = gate, up_ = up) NativeCpu.SwiGlu(gp, up_, gate.Length);
    }

    public void ResidualAddSteered(Span<float> x, ReadOnlySpan<float> delta, int rows, int hidden, RowSteering steering)
    {
        Check.Length(x, (long)rows * hidden, "x", "ResidualAddSteered");
        if (!delta.IsEmpty) Check.Length(delta, (long)rows * hidden, "delta", "ResidualAddSteered");
        if (!steering.IsEmpty) Check.Steering(steering, rows, hidden);
        int vectorCount = steering.Vectors.Length / hidden;
        if (vectorCount > MaxVectors) throw new ArgumentException($"at most {MaxVectors} distinct steering vectors per call, got {vectorCount}");
        float** table = stackalloc float*[Math.Max(1, vectorCount)];
        fixed (float* xp = x, dp = delta, vp = steering.Vectors)
        fixed (int* offsets = steering.RowAdds)
        fixed (SteerAdd* adds = steering.Adds)
        {
            for (int i = 0; i < vectorCount; i++) table[i] = vp + (long)i * hidden;
            NativeCpu.ResidualAddSteered(xp, delta.IsEmpty ? null : dp, rows, hidden, steering.IsEmpty ? null : offsets, adds, table);
        }
    }

    public void Attention(ReadOnlySpan<float> q, Span<float> output, ReadOnlySpan<AttentionSequence> sequences, int heads, int kvHeads, int headDim)
    {
        Check.Attention(q, output, sequences, heads, kvHeads, headDim);
        fixed (float* qp = q, op = output)
        fixed (AttentionSequence* sp = sequences)
            NativeCpu.Attention(qp, op, sp, sequences.Length, heads, kvHeads, headDim);
    }

    public void LogSoftmax(ReadOnlySpan<float> logits, Span<float> output, int rows)
    {
        Check.Length(output, logits.Length, "output", "LogSoftmax");
        if (rows <= 0 || logits.Length % rows != 0) throw new ArgumentException($"LogSoftmax: {logits.Length} logits do not split into {rows} rows");
        fixed (float* lp = logits, op = output) NativeCpu.LogSoftmax(lp, op, rows, logits.Length / rows);
    }
}
