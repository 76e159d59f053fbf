using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// The forward-pass kernels in C# (Vector512 or Vector256 / TensorPrimitives) on the same packed
/// layout as <see cref="NativeCpuKernels"/>; the fallback where libsteer_cpu is not built. x is
/// rounded to bf16 exactly as the native path does, and the GEMM computes the native f32 chain
/// (ManagedCpuKernels.Gemm.cs), so the two differ only where native flushes denormals.
/// Not reentrant: one forward pass at a time per instance (it reuses its scratch).
/// </summary>
public sealed unsafe partial class ManagedCpuKernels : ICpuKernels
{
    [ThreadStatic] static float[]? t_scores; // attention scores of one token's query heads of a KV group

    public string Name => "managed";

    public PackedMatrix Pack(WeightMatrix w)
    {
        var packed = new PackedMatrix(w.Name, w.Rows, w.Cols);
        ushort* dst = packed.Data;
        int pairs = packed.Pairs, rows = w.Rows, cols = w.Cols;
        Parallel.For(0, packed.Panels, () => new float[cols], (panel, _, row) =>
        {
            ushort* outp = dst + (long)panel * pairs * 32;
            for (int r = 0; r < 16; r++)
            {
                int src = panel * 16 + r;
                if (src < rows && w.DType == DType.BF16)
                {
                    ushort* s = (ushort*)w.Data + (long)src * cols;
                    for (int c = 0; c < cols; c++) outp[(c >> 1) * 32 + r * 2 + (c & 1)] = s[c];
                }
                else if (src < rows)
                {
                    w.ReadRow(src, row);
                    for (int c = 0; c < cols; c++) outp[(c >> 1) * 32 + r * 2 + (c & 1)] = BFloat16Convert.FromF32RoundNearestEven(row[c]);
                }
                else
                    for (int c = 0; c < cols; c++) outp[(c >> 1) * 32 + r * 2 + (c & 1)] = 0;
                if ((cols & 1) != 0) outp[(cols >> 1) * 32 + r * 2 + 1] = 0;
            }
            return row;
        }, _ => { });
        return packed;
    }

    // ---- row ops -------------------------------------------------------------------------

    public void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int rows, float eps)
    {
        int n = weight.Length;
        Check.Length(x, (long)rows * n, "x", "RmsNorm");
        Check.Length(y, (long)rows * n, "y", "RmsNorm");
        fixed (float* xp = x, wp = weight, yp = y)
        {
            float* xPtr = xp, wPtr = wp, yPtr = yp;
            ParallelRows(rows, n, r =>
            {
                var xr = new ReadOnlySpan<float>(xPtr + (long)r * n, n);
                // Sum of squares in double, like the reference, so both compute the same scale.
                double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                int i = 0;
                for (; i + 4 <= n; i += 4)
                {
                    s0 += (double)xr[i] * xr[i]; s1 += (double)xr[i + 1] * xr[i + 1];
                    s2 += (double)xr[i + 2] * xr[i + 2]; s3 += (double)xr[i + 3] * xr[i + 3];
                }
                for (; i < n; i++) s0 += (double)xr[i] * xr[i];
                float scale = (float)(1.0 / Math.Sqrt((s0 + s1 + s2 + s3) / n + eps));
                var yr = new Span<float>(yPtr + (long)r * n, n);
                TensorPrimitives.Multiply(xr, scale, yr);
                TensorPrimitives.Multiply(yr, new ReadOnlySpan<float>(wPtr, n), yr);
            });
        }
    }

    public void Rope(Span<float> x, int rows, int heads, int headDim, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq)
    {
        Check.Length(x, (long)rows * heads * headDim, "x", "Rope");
        Check.Length(positions, rows, "positions", "Rope");
        Check.Length(invFreq, headDim / 2, "invFreq", "Rope");
        int half = headDim / 2, rowLength = heads * headDim;
        fixed (float* xp = x, fp = invFreq)
        fixed (int* pp = positions)
        {
            float* xPtr = xp, fPtr = fp;
            int* pPtr = pp;
            ParallelRows(rows, rowLength, r =>
            {
                Span<float> cos = stackalloc float[half];
                Span<float> sin = stackalloc float[half];
                for (int i = 0; i < half; i++)
                {
                    double angle = (float)pPtr[r] * fPtr[i];
                    cos[i] = (float)Math.Cos(angle);
                    sin[i] = (float)Math.Sin(angle);
                }
                for (int h = 0; h < heads; h++)
                {
                    float* a = xPtr + (long)r * rowLength + h * headDim, b = a + half;
                    for (int i = 0; i < half; i++)
                    {
                        float x1 = a[i], x2 = b[i];
                        a[i] = x1 * cos[i] - x2 * sin[i];
                        b[i] = x2 * cos[i] + x1 * sin[i];
                    }
                }
            });
        }
    }

    public void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        Check.Length(up, gate.Length, "up", "SwiGlu");
        const int Chunk = 4096;
        int chunks = (gate.Length + Chunk - 1) / Chunk;
        fixed (float* gp = gate, upp = up)
        {
            float* gPtr = gp, uPtr = upp;
            int count = gate.Length;
            Parallel.For(0, chunks, c =>
            {
                int start = c * Chunk, len = Math.Min(Chunk, count - start);
                var g = new Span<float>(gPtr + start, len);
                Span<float> s = stackalloc float[len];
                TensorPrimitives.Sigmoid(g, s);
                TensorPrimitives.Multiply(g, s, g);
                TensorPrimitives.Multiply(g, new ReadOnlySpan<float>(uPtr + start, len), g);
            });
        }
    }

    public void ResidualAddSteered(Span<float> x, ReadOnlySpan<float> delta, int rows, int hidden, RowSteering steering)
    {
        Check.Length(x, (long)rows * hidden, "x", "ResidualAddSteered");
        if (!delta.IsEmpty)
        {
            Check.Length(delta, (long)rows * hidden, "delta", "ResidualAddSteered");
            TensorPrimitives.Add(x[..(rows * hidden)], delta[..(rows * hidden)], x);
        }
        if (steering.IsEmpty) return;
        Check.Steering(steering, rows, hidden);
        for (int r = 0; r < rows; r++)
        {
            Span<float> xr = x.Slice(r * hidden, hidden);
            for (int a = steering.RowAdds[r]; a < steering.RowAdds[r + 1]; a++)
            {
                SteerAdd add = steering.Adds[a];
                int width = add.Width == 0 ? hidden : add.Width;
                SteeringOps.Apply(xr.Slice(add.Offset, width), steering.Vectors.Slice(add.Vector * hidden, width), add.Op, add.Multiplier, add.Lo, add.Hi);
            }
        }
    }

    /// <summary>
    /// One task per (query token, KV head): the group's query heads share each key and value row as
    /// it is read (nh / nkv times less cache traffic than a task per query head), the scores of one
    /// head are a contiguous row for the vectorized softmax.
    /// </summary>
    public void Attention(ReadOnlySpan<float> q, Span<float> output, ReadOnlySpan<AttentionSequence> sequences, int heads, int kvHeads, int headDim)
    {
        Check.Attention(q, output, sequences, heads, kvHeads, headDim);
        int qDim = heads * headDim, kvDim = kvHeads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        var seqs = sequences.ToArray();
        var firstTask = new int[seqs.Length + 1];
        for (int s = 0; s < seqs.Length; s++) firstTask[s + 1] = firstTask[s] + seqs[s].Count * kvHeads;
        fixed (float* qp = q, op = output)
        {
            float* qPtr = qp, oPtr = op;
            Parallel.For(0, firstTask[^1], task =>
            {
                int s = Array.BinarySearch(firstTask, task);
                if (s < 0) s = ~s - 1; // the sequence whose task range holds `task`
                AttentionSequence seq = seqs[s];
                int local = task - firstTask[s], i = local / kvHeads, g = local % kvHeads;
                int visible = seq.Start + i + 1, kvOffset = g * headDim;
                int need = group * visible;
                float[] scores = t_scores is { } t && t.Length >= need ? t : (t_scores = new float[Math.Max(need, 4096)]);
                float* qg = qPtr + (long)(seq.Row + i) * qDim + g * group * headDim;  // the group's heads, contiguous
                float* og = oPtr + (long)(seq.Row + i) * qDim + g * group * headDim;
                fixed (float* sp = scores)
                {
                    GroupScores(qg, seq.Keys + kvOffset, kvDim, visible, group, headDim, scale, sp);
                    for (int h = 0; h < group; h++)
                    {
                        var sc = new Span<float>(sp + (long)h * visible, visible);
                        float max = TensorPrimitives.Max(sc);
                        TensorPrimitives.Subtract(sc, max, sc);
                        // No denormals (each op on one costs a microcode assist, ~40× on large scores): exps
                        // stay ≥ e^-87, and keys weighing under 1e-20 of the total are skipped (below), which
                        // moves the output by less than 1e-20 · Σ|v| (the max key alone weighs 1).
                        TensorPrimitives.Max(sc, -87f, sc);
                        TensorPrimitives.Exp(sc, sc);
                        TensorPrimitives.Multiply(sc, 1f / TensorPrimitives.Sum(sc), sc);
                    }
                    GroupValues(sp, seq.Values + kvOffset, kvDim, visible, group, headDim, og);
                }
            });
        }
    }

    /// <summary>scores (group, visible) = scale · q_h · k_j for the group's heads q (group, hd) and keys k_j (stride kvDim).</summary>
    static void GroupScores(float* q, float* keys, int kvDim, int visible, int group, int headDim, float scale, float* scores)
    {
        if (!Vector512.IsHardwareAccelerated || headDim % 16 != 0)
        {
            for (int h = 0; h < group; h++)
                for (int j = 0; j < visible; j++)
                    scores[(long)h * visible + j] = TensorPrimitives.Dot(new ReadOnlySpan<float>(q + h * headDim, headDim),
                        new ReadOnlySpan<float>(keys + (long)j * kvDim, headDim)) * scale;
            return;
        }
        for (int j = 0; j < visible; j++)
        {
            float* k = keys + (long)j * kvDim;
            for (int h = 0; h < group; h++)
            {
                float* qh = q + h * headDim;
                var acc = Vector512.Load(qh) * Vector512.Load(k);
                for (int d = 16; d < headDim; d += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(qh + d), Vector512.Load(k + d), acc);
                scores[(long)h * visible + j] = Vector512.Sum(acc) * scale;
            }
        }
    }

    /// <summary>out (group, hd) = Σ_j p_hj · v_j over the values (stride kvDim), skipping weights under 1e-20.</summary>
    static void GroupValues(float* p, float* values, int kvDim, int visible, int group, int headDim, float* output)
    {
        new Span<float>(output, group * headDim).Clear();
        bool wide = Vector512.IsHardwareAccelerated && headDim % 16 == 0;
        for (int j = 0; j < visible; j++)
        {
            float* v = values + (long)j * kvDim;
            for (int h = 0; h < group; h++)
            {
                float w = p[(long)h * visible + j];
                if (!(w >= 1e-20f)) continue;
                float* o = output + h * headDim;
                if (!wide)
                {
                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v, headDim), w, new ReadOnlySpan<float>(o, headDim), new Span<float>(o, headDim));
                    continue;
                }
                var wv = Vector512.Create(w);
                for (int d = 0; d < headDim; d += 16)
                    Vector512.FusedMultiplyAdd(Vector512.Load(v + d), wv, Vector512.Load(o + d)).Store(o + d);
            }
        }
    }

    public void LogSoftmax(ReadOnlySpan<float> logits, Span<float> output, int rows)
    {
        Check.Length(output, logits.Length, "output", "LogSoftmax");
        if (rows <= 0 || logits.Length % rows != 0) throw new ArgumentException($"LogSoftmax: {logits.Length} logits do not split into {rows} rows");
        int v = logits.Length / rows;
        fixed (float* lp = logits, op = output)
        {
            float* lPtr = lp, oPtr = op;
            Parallel.For(0, rows, r =>
            {
                var x = new ReadOnlySpan<float>(lPtr + (long)r * v, v);
                float max = TensorPrimitives.Max(x);
                Span<float> tmp = stackalloc float[Math.Min(v, 1024)];
                double sum = 0;
                for (int i = 0; i < v; i += tmp.Length)
                {
                    int len = Math.Min(tmp.Length, v - i);
                    TensorPrimitives.Subtract(x.Slice(i, len), max, tmp[..len]);
                    TensorPrimitives.Exp(tmp[..len], tmp[..len]);
                    sum += TensorPrimitives.Sum(tmp[..len]);
                }
                TensorPrimitives.Subtract(x, max + (float)Math.Log(sum), new Span<float>(oPtr + (long)r * v, v));
            });
        }
    }

    /// <summary>Runs body(row) over rows, in parallel when the work is worth a fork.</summary>
    static void ParallelRows(int rows, int rowLength, Action<int> body)
    {
        if ((long)rows * rowLength < 32768)
            for (int r = 0; r < rows; r++) body(r);
        else
            Parallel.For(0, rows, body);
    }
}
