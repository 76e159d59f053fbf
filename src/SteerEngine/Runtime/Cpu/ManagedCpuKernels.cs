using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// The forward-pass kernels in C# (Vector512 / TensorPrimitives) on the same packed layout as
/// <see cref="NativeCpuKernels"/>; the fallback where libsteer_cpu is not built. x is rounded to bf16
/// exactly as the native path does, so the two differ only by f32 summation order.
/// Not reentrant: one forward pass at a time per instance (it reuses its scratch).
/// </summary>
public sealed unsafe class ManagedCpuKernels : ICpuKernels
{
    const int PanelsPerTask = 4;   // 64 output columns
    const int RowTile = 4;         // rows per micro-kernel; x is laid out (tile, k, RowTile)
    const int PairsPerBlock = 64;  // k block of the widened path: 4 panels × 128 k × 64 B = 32 KB

    float[] _x = [];               // (tiles, 2·pairs, RowTile) x rounded to bf16, widened

    [ThreadStatic] static float[]? t_wide;   // (PanelsPerTask, 2·PairsPerBlock, 16)
    [ThreadStatic] static float[]? t_scores; // attention scores of one query

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

    // ---- MatMul ----------------------------------------------------------------------------

    public void MatMul(ReadOnlySpan<float> x, PackedMatrix w, Span<float> y, int rows)
    {
        Check.Length(x, (long)rows * w.Cols, "x", w.Name);
        Check.Length(y, (long)rows * w.Rows, "y", w.Name);
        if (rows <= 0) return;
        int pairs = w.Pairs, kp = 2 * pairs, tiles = (rows + RowTile - 1) / RowTile;
        if (_x.Length < (long)tiles * kp * RowTile) _x = new float[(long)tiles * kp * RowTile];
        RoundX(x, rows, w.Cols, kp, _x);

        int groups = (w.Panels + PanelsPerTask - 1) / PanelsPerTask;
        int threads = Environment.ProcessorCount;
        int rowChunks = groups >= 4 * threads ? 1 : Math.Min(tiles, (4 * threads + groups - 1) / groups);
        int tilesPerChunk = (tiles + rowChunks - 1) / rowChunks;
        rowChunks = (tiles + tilesPerChunk - 1) / tilesPerChunk;
        fixed (float* xp = _x, yp = y)
        {
            float* xPtr = xp, yPtr = yp;
            Parallel.For(0, groups * rowChunks, task =>
            {
                int g = task % groups, chunk = task / groups;
                int p0 = g * PanelsPerTask, np = Math.Min(PanelsPerTask, w.Panels - p0);
                int r0 = chunk * tilesPerChunk * RowTile, r1 = Math.Min(rows, r0 + tilesPerChunk * RowTile);
                if (!Vector512.IsHardwareAccelerated) GemmScalar(xPtr, w, yPtr, p0, np, r0, r1);
                // Both paths compute the same chain per output (same k blocks, same order), so a row's
                // result does not depend on how many rows share the call (DESIGN.md §4).
                else if (r1 - r0 == 1) GemvStream(xPtr, w, yPtr, p0, np, r0);
                else GemmWide(xPtr, w, yPtr, p0, np, r0, r1);
            });
        }
    }

    /// <summary>x (rows, k) → (tiles, kp, RowTile): bf16-rounded values, zero padding.</summary>
    static void RoundX(ReadOnlySpan<float> x, int rows, int k, int kp, float[] dst)
    {
        Span<ushort> h = k <= 8192 ? stackalloc ushort[k] : new ushort[k];
        int tiles = (rows + RowTile - 1) / RowTile;
        for (int r = 0; r < tiles * RowTile; r++)
        {
            int t = r / RowTile, rr = r % RowTile;
            long baseIndex = (long)t * kp * RowTile + rr;
            if (r < rows)
            {
                BFloat16Convert.FromF32(x.Slice(r * k, k), h);
                for (int i = 0; i < k; i++) dst[baseIndex + (long)i * RowTile] = BFloat16Convert.ToF32(h[i]);
            }
            else
                for (int i = 0; i < k; i++) dst[baseIndex + (long)i * RowTile] = 0;
            for (int i = k; i < kp; i++) dst[baseIndex + (long)i * RowTile] = 0;
        }
    }

    /// <summary>Compute-bound rows: each k block of the task's panels widened to f32 once, then a
    /// 4 rows × 4 panels FMA micro-kernel over it (16 accumulators).</summary>
    static void GemmWide(float* x, PackedMatrix w, float* y, int p0, int np, int r0, int r1)
    {
        int pairs = w.Pairs, n = w.Rows;
        long ws = (long)pairs * 32;
        var high = Vector512.Create(0xFFFF0000u);
        t_wide ??= GC.AllocateArray<float>(PanelsPerTask * 2 * PairsPerBlock * 16, pinned: true);
        fixed (float* wide = t_wide)
        {
            for (int kb = 0; kb < pairs; kb += PairsPerBlock)
            {
                int kc = Math.Min(PairsPerBlock, pairs - kb), kc2 = 2 * kc;
                for (int p = 0; p < PanelsPerTask; p++)
                {
                    float* dst = wide + (long)p * kc2 * 16;
                    if (p >= np)
                    {
                        new Span<float>(dst, kc2 * 16).Clear();
                        continue;
                    }
                    ushort* src = w.Data + (p0 + p) * ws + (long)kb * 32;
                    for (int j = 0; j < kc; j++)
                    {
                        // the same panel's next block, 4 KB on: the hardware prefetcher stops at the page boundary
                        if (Sse.IsSupported) Sse.Prefetch1(src + (j + PairsPerBlock) * 32);
                        var u = Vector512.Load((uint*)(src + j * 32));
                        (u << 16).AsSingle().Store(dst + 2 * j * 16);
                        (u & high).AsSingle().Store(dst + (2 * j + 1) * 16);
                    }
                }
                for (int r = r0; r < r1; r += RowTile)
                {
                    float* xt = x + ((long)(r / RowTile) * 2 * pairs + 2 * kb) * RowTile;
                    Tile4x4(xt, wide, kc2, y + (long)r * n, n, Math.Min(RowTile, r1 - r), p0, np, kb > 0);
                }
            }
        }
    }

    /// <summary>
    /// One row (batch-1 decode): bound by reading the weights, so they stream straight from the packed
    /// matrix, widened in registers instead of through a block copy. Same k blocks and FMA order as
    /// <see cref="GemmWide"/> (each pair's even element, then its odd one), hence the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemvStream(float* x, PackedMatrix w, float* y, int p0, int np, int row)
    {
        int pairs = w.Pairs, n = w.Rows;
        long ws = (long)pairs * 32;
        var high = Vector512.Create(0xFFFF0000u);
        float* xt = x + (long)(row / RowTile) * 2 * pairs * RowTile + row % RowTile;
        // Panels past the matrix's last read the group's first again; their sums are never stored.
        uint* w0 = (uint*)(w.Data + p0 * ws), w1 = (uint*)(w.Data + (p0 + (np > 1 ? 1 : 0)) * ws);
        uint* w2 = (uint*)(w.Data + (p0 + (np > 2 ? 2 : 0)) * ws), w3 = (uint*)(w.Data + (p0 + (np > 3 ? 3 : 0)) * ws);
        for (int kb = 0; kb < pairs; kb += PairsPerBlock)
        {
            int end = Math.Min(pairs, kb + PairsPerBlock);
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
            for (int j = kb; j < end; j++)
            {
                var u0 = Vector512.Load(w0 + j * 16); var u1 = Vector512.Load(w1 + j * 16);
                var u2 = Vector512.Load(w2 + j * 16); var u3 = Vector512.Load(w3 + j * 16);
                var even = Vector512.Create(xt[2L * j * RowTile]);
                c0 = Vector512.FusedMultiplyAdd(even, (u0 << 16).AsSingle(), c0); c1 = Vector512.FusedMultiplyAdd(even, (u1 << 16).AsSingle(), c1);
                c2 = Vector512.FusedMultiplyAdd(even, (u2 << 16).AsSingle(), c2); c3 = Vector512.FusedMultiplyAdd(even, (u3 << 16).AsSingle(), c3);
                var odd = Vector512.Create(xt[(2L * j + 1) * RowTile]);
                c0 = Vector512.FusedMultiplyAdd(odd, (u0 & high).AsSingle(), c0); c1 = Vector512.FusedMultiplyAdd(odd, (u1 & high).AsSingle(), c1);
                c2 = Vector512.FusedMultiplyAdd(odd, (u2 & high).AsSingle(), c2); c3 = Vector512.FusedMultiplyAdd(odd, (u3 & high).AsSingle(), c3);
            }
            StoreRow(y + (long)row * n, p0, np, n, kb > 0, c0, c1, c2, c3);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile4x4(float* x, float* wide, int kc2, float* y, int n, int rows, int p0, int np, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        long ps = (long)kc2 * 16;
        for (int i = 0; i < kc2; i++)
        {
            float* wi = wide + i * 16;
            var b0 = Vector512.Load(wi);
            var b1 = Vector512.Load(wi + ps);
            var b2 = Vector512.Load(wi + 2 * ps);
            var b3 = Vector512.Load(wi + 3 * ps);
            float* xi = x + i * RowTile;
            var a = Vector512.Create(xi[0]);
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            c02 = Vector512.FusedMultiplyAdd(a, b2, c02); c03 = Vector512.FusedMultiplyAdd(a, b3, c03);
            a = Vector512.Create(xi[1]);
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            c12 = Vector512.FusedMultiplyAdd(a, b2, c12); c13 = Vector512.FusedMultiplyAdd(a, b3, c13);
            a = Vector512.Create(xi[2]);
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            c22 = Vector512.FusedMultiplyAdd(a, b2, c22); c23 = Vector512.FusedMultiplyAdd(a, b3, c23);
            a = Vector512.Create(xi[3]);
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            c32 = Vector512.FusedMultiplyAdd(a, b2, c32); c33 = Vector512.FusedMultiplyAdd(a, b3, c33);
        }
        StoreRow(y, p0, np, n, accumulate, c00, c01, c02, c03);
        if (rows > 1) StoreRow(y + n, p0, np, n, accumulate, c10, c11, c12, c13);
        if (rows > 2) StoreRow(y + 2L * n, p0, np, n, accumulate, c20, c21, c22, c23);
        if (rows > 3) StoreRow(y + 3L * n, p0, np, n, accumulate, c30, c31, c32, c33);
    }

    static void StoreRow(float* yRow, int p0, int np, int n, bool accumulate,
        Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        Accumulate(yRow, p0, n, v0, accumulate);
        if (np > 1) Accumulate(yRow, p0 + 1, n, v1, accumulate);
        if (np > 2) Accumulate(yRow, p0 + 2, n, v2, accumulate);
        if (np > 3) Accumulate(yRow, p0 + 3, n, v3, accumulate);
    }

    static void Accumulate(float* yRow, int panel, int n, Vector512<float> v, bool accumulate)
    {
        int c0 = panel * 16, cols = Math.Min(16, n - c0);
        if (cols == 16)
        {
            if (accumulate) v += Vector512.Load(yRow + c0);
            v.Store(yRow + c0);
            return;
        }
        for (int i = 0; i < cols; i++) yRow[c0 + i] = accumulate ? yRow[c0 + i] + v[i] : v[i];
    }

    static void Store(float* yRow, int panel, int n, Vector512<float> v) => Accumulate(yRow, panel, n, v, false);

    static void GemmScalar(float* x, PackedMatrix w, float* y, int p0, int np, int r0, int r1)
    {
        int pairs = w.Pairs, n = w.Rows;
        Span<float> acc = stackalloc float[16];
        for (int p = p0; p < p0 + np; p++)
        {
            ushort* wp = w.Data + (long)p * pairs * 32;
            for (int r = r0; r < r1; r++)
            {
                float* xr = x + (long)(r / RowTile) * 2 * pairs * RowTile + r % RowTile;
                acc.Clear();
                for (int j = 0; j < pairs; j++)
                    for (int l = 0; l < 16; l++)
                    {
                        acc[l] += xr[2 * j * RowTile] * BFloat16Convert.ToF32(wp[j * 32 + 2 * l]);
                        acc[l] += xr[(2 * j + 1) * RowTile] * BFloat16Convert.ToF32(wp[j * 32 + 2 * l + 1]);
                    }
                for (int l = 0; l < Math.Min(16, n - p * 16); l++) y[(long)r * n + p * 16 + l] = acc[l];
            }
        }
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
                TensorPrimitives.MultiplyAdd(steering.Vectors.Slice(add.Vector * hidden, hidden), add.Multiplier, xr, xr);
            }
        }
    }

    public void Attention(ReadOnlySpan<float> q, Span<float> output, ReadOnlySpan<AttentionSequence> sequences, int heads, int kvHeads, int headDim)
    {
        Check.Attention(q, output, sequences, heads, kvHeads, headDim);
        int qDim = heads * headDim, kvDim = kvHeads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        var seqs = sequences.ToArray();
        var firstTask = new int[seqs.Length + 1];
        for (int s = 0; s < seqs.Length; s++) firstTask[s + 1] = firstTask[s] + seqs[s].Count * heads;
        fixed (float* qp = q, op = output)
        {
            float* qPtr = qp, oPtr = op;
            Parallel.For(0, firstTask[^1], task =>
            {
                int s = Array.BinarySearch(firstTask, task);
                if (s < 0) s = ~s - 1; // the sequence whose task range holds `task`
                AttentionSequence seq = seqs[s];
                int local = task - firstTask[s], i = local / heads, h = local % heads;
                int visible = seq.Start + i + 1, kvOffset = (h / group) * headDim;
                float[] scores = t_scores is { } t && t.Length >= visible ? t : (t_scores = new float[Math.Max(visible, 1024)]);
                var qi = new ReadOnlySpan<float>(qPtr + (long)(seq.Row + i) * qDim + h * headDim, headDim);
                for (int j = 0; j < visible; j++)
                    scores[j] = TensorPrimitives.Dot(qi, new ReadOnlySpan<float>(seq.Keys + (long)j * kvDim + kvOffset, headDim)) * scale;
                var sc = scores.AsSpan(0, visible);
                float max = TensorPrimitives.Max(sc);
                TensorPrimitives.Subtract(sc, max, sc);
                // No denormals (each op on one costs a microcode assist, ~40× on large scores): exps
                // stay ≥ e^-87, and keys weighing under 1e-20 of the total are skipped, which moves
                // the output by less than 1e-20 · Σ|v| (the max key alone weighs 1).
                TensorPrimitives.Max(sc, -87f, sc);
                TensorPrimitives.Exp(sc, sc);
                float inv = 1f / TensorPrimitives.Sum(sc);
                var oi = new Span<float>(oPtr + (long)(seq.Row + i) * qDim + h * headDim, headDim);
                oi.Clear();
                for (int j = 0; j < visible; j++)
                    if (sc[j] * inv >= 1e-20f)
                        TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(seq.Values + (long)j * kvDim + kvOffset, headDim), sc[j] * inv, oi, oi);
            });
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
