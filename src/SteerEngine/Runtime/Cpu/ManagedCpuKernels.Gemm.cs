using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>Which micro-kernels the managed GEMM runs. All compute the same f32 chain per output.</summary>
internal enum ManagedGemmPath
{
    /// <summary>Plain C#, one output at a time.</summary>
    Scalar,
    /// <summary>Vector256 with FMA: 6 rows × 1 panel over widened weights; for 2–4 rows one panel, for one
    /// row 4 panels streamed.</summary>
    Avx2,
    /// <summary>Vector512: 6 rows × 4 panels over widened weights, 4 panels streamed for one row.</summary>
    Avx512,
}

/// <summary>
/// y(rows, n) = x(rows, k) · Wᵀ on the packed bf16 layout, x rounded to bf16 once per call.
/// Every path computes the chain of native/cpu/gemm_bf16.c for each output: from 0, for each k pair
/// in order, acc = fma(x_odd, w_odd, acc) then acc = fma(x_even, w_even, acc); a k block continues
/// the chain from y. So a row's result is bitwise the same whatever the path and however many rows
/// share the call (DESIGN.md §4: a sampled sequence must not change with its batch neighbours).
/// </summary>
public sealed unsafe partial class ManagedCpuKernels
{
    const int PanelsPerTask = 4;     // 64 output columns per task
    const int Tile512 = 6;           // rows per Vector512 micro-kernel: 24 accumulators of 32 zmm
    const int Tile256 = 6;           // rows per Vector256 micro-kernel: 12 accumulators of 16 ymm
    const int Block512 = 256;        // k pairs per widened block: 4 panels × 512 k × 64 B = 128 KB, in L2
    const int Block256 = 128;        // k pairs per widened block: 1 panel × 256 k × 64 B = 16 KB
    const int StreamRows256 = 4;     // up to this many rows the weights stream instead of being widened
    // A task's x for one k block stays in L2: ≤ 16 × 6 rows × 256 k × 4 B = 96 KB (Vector256), or
    // 16 × 6 rows × 512 k × 4 B = 192 KB beside the 128 KB widened block (Vector512).
    const int MaxTilesPerTask = 16;

    readonly ManagedGemmPath _path;
    readonly int _rowTile;           // rows per x tile of the path
    float[] _x = [];                 // (tiles, 2·pairs, _rowTile) x rounded to bf16, widened, pairs odd first

    [ThreadStatic] static float[]? t_wide; // widened weights of one k block: (panels, 2·block, 16), pinned

    public ManagedCpuKernels() : this(Vector512.IsHardwareAccelerated ? ManagedGemmPath.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? ManagedGemmPath.Avx2 : ManagedGemmPath.Scalar) { }

    /// <summary>A forced GEMM path (tests). Avx512 runs anywhere (emulated where Vector512 is not
    /// accelerated); Avx2 needs AVX2 and FMA.</summary>
    internal ManagedCpuKernels(ManagedGemmPath path)
    {
        if (path == ManagedGemmPath.Avx2 && !(Avx2.IsSupported && Fma.IsSupported))
            throw new PlatformNotSupportedException("the managed AVX2 GEMM path needs AVX2 and FMA");
        _path = path;
        _rowTile = path == ManagedGemmPath.Avx2 ? Tile256 : Tile512;
    }

    internal ManagedGemmPath GemmPath => _path;

    public void MatMul(ReadOnlySpan<float> x, PackedMatrix w, Span<float> y, int rows)
    {
        Check.Length(x, (long)rows * w.Cols, "x", w.Name);
        Check.Length(y, (long)rows * w.Rows, "y", w.Name);
        if (rows <= 0) return;
        int kp = 2 * w.Pairs, tile = _rowTile, tiles = (rows + tile - 1) / tile;
        if (_x.Length < (long)tiles * kp * tile) _x = new float[(long)tiles * kp * tile];
        RoundX(x, rows, w.Cols, kp, tile, _x);

        int groups = (w.Panels + PanelsPerTask - 1) / PanelsPerTask;
        int threads = Environment.ProcessorCount;
        int rowChunks = groups >= 4 * threads ? 1 : Math.Min(tiles, (4 * threads + groups - 1) / groups);
        rowChunks = Math.Max(rowChunks, (tiles + MaxTilesPerTask - 1) / MaxTilesPerTask);
        int tilesPerChunk = (tiles + rowChunks - 1) / rowChunks;
        rowChunks = (tiles + tilesPerChunk - 1) / tilesPerChunk;
        ManagedGemmPath path = _path;
        fixed (float* xp = _x, yp = y)
        {
            float* xPtr = xp, yPtr = yp;
            // A group's row chunks are consecutive tasks, so its weights are still in cache for the next.
            Parallel.For(0, groups * rowChunks, task =>
            {
                int g = task / rowChunks, chunk = task % rowChunks;
                int p0 = g * PanelsPerTask, np = Math.Min(PanelsPerTask, w.Panels - p0);
                int r0 = chunk * tilesPerChunk * tile, r1 = Math.Min(rows, r0 + tilesPerChunk * tile);
                switch (path)
                {
                    case ManagedGemmPath.Avx512 when r1 - r0 == 1: GemvStream512(xPtr, w, yPtr, p0, np, r0); break;
                    case ManagedGemmPath.Avx512: GemmWide512(xPtr, w, yPtr, p0, np, r0, r1); break;
                    case ManagedGemmPath.Avx2 when r1 - r0 == 1: GemvStream256(xPtr, w, yPtr, p0, np, r0); break;
                    case ManagedGemmPath.Avx2 when r1 - r0 <= StreamRows256: GemmStream256(xPtr, w, yPtr, p0, np, r0, r1 - r0); break;
                    case ManagedGemmPath.Avx2: GemmWide256(xPtr, w, yPtr, p0, np, r0, r1); break;
                    default: GemmScalar(xPtr, w, yPtr, p0, np, r0, r1, tile); break;
                }
            });
        }
    }

    /// <summary>
    /// x (rows, k) → (tiles, kp, tile): bf16-rounded values widened to f32, each pair's odd element
    /// first (the chain's order), so a micro-kernel's broadcasts read one contiguous run per k.
    /// Rows of the last tile past `rows` and columns past k are zero.
    /// </summary>
    static void RoundX(ReadOnlySpan<float> x, int rows, int k, int kp, int tile, float[] dst)
    {
        int tiles = (rows + tile - 1) / tile;
        fixed (float* xp = x, dp = dst)
        {
            float* xPtr = xp, dPtr = dp;
            void RoundTile(int t)
            {
                Span<ushort> h = kp <= 8192 ? stackalloc ushort[kp] : new ushort[kp];
                h[k..].Clear();
                for (int rr = 0; rr < tile; rr++)
                {
                    float* o = dPtr + (long)t * kp * tile + rr;
                    int r = t * tile + rr;
                    if (r >= rows)
                    {
                        for (int i = 0; i < kp; i++) o[(long)i * tile] = 0;
                        continue;
                    }
                    BFloat16Convert.FromF32(new ReadOnlySpan<float>(xPtr + (long)r * k, k), h);
                    for (int i = 0; i < kp; i++) o[(long)i * tile] = BFloat16Convert.ToF32(h[i ^ 1]);
                }
            }
            if ((long)rows * k < 1 << 16)
                for (int t = 0; t < tiles; t++) RoundTile(t);
            else
                Parallel.For(0, tiles, RoundTile);
        }
    }

    /// <summary>The chain one output at a time; where neither vector path runs.</summary>
    static void GemmScalar(float* x, PackedMatrix w, float* y, int p0, int np, int r0, int r1, int tile)
    {
        int pairs = w.Pairs, n = w.Rows;
        Span<float> acc = stackalloc float[16];
        for (int p = p0; p < p0 + np; p++)
        {
            ushort* wp = w.Data + (long)p * pairs * 32;
            for (int r = r0; r < r1; r++)
            {
                float* xr = x + (long)(r / tile) * 2 * pairs * tile + r % tile;
                acc.Clear();
                for (int j = 0; j < pairs; j++)
                {
                    float xo = xr[2L * j * tile], xe = xr[(2L * j + 1) * tile];
                    for (int l = 0; l < 16; l++)
                    {
                        acc[l] = MathF.FusedMultiplyAdd(xo, BFloat16Convert.ToF32(wp[j * 32 + 2 * l + 1]), acc[l]);
                        acc[l] = MathF.FusedMultiplyAdd(xe, BFloat16Convert.ToF32(wp[j * 32 + 2 * l]), acc[l]);
                    }
                }
                for (int l = 0; l < Math.Min(16, n - p * 16); l++) y[(long)r * n + p * 16 + l] = acc[l];
            }
        }
    }

    /// <summary>This thread's block scratch of at least `floats` floats, 64-byte aligned.</summary>
    static float* WideScratch(int floats)
    {
        if (t_wide is null || t_wide.Length < floats + 16) t_wide = GC.AllocateArray<float>(floats + 16, pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref t_wide[0]);
        return (float*)(((nint)p + 63) & ~(nint)63);
    }

    /// <summary>
    /// A micro-kernel's tile at the matrix's edge, where y has only rows × cols of its tileRows ×
    /// tileCols: the chain so far staged in a full tile (zeros elsewhere: x's padding rows and the
    /// padded panels' weights are zero too), run through the kernel and the existing part copied back.
    /// </summary>
    static void EdgeTile(delegate*<float*, float*, int, float*, long, bool, void> kernel, float* x, float* wide, int kc2,
        float* y, int n, int rows, int cols, int tileRows, int tileCols, bool accumulate)
    {
        float* c = stackalloc float[tileRows * tileCols];
        new Span<float>(c, tileRows * tileCols).Clear();
        if (accumulate)
            for (int r = 0; r < rows; r++) new ReadOnlySpan<float>(y + (long)r * n, cols).CopyTo(new Span<float>(c + r * tileCols, cols));
        kernel(x, wide, kc2, c, tileCols, accumulate);
        for (int r = 0; r < rows; r++) new ReadOnlySpan<float>(c + r * tileCols, cols).CopyTo(new Span<float>(y + (long)r * n, cols));
    }

    // ---- Vector512 ------------------------------------------------------------------------

    /// <summary>Compute-bound rows: each k block of the task's panels widened to f32 once, then a
    /// 6 rows × 4 panels FMA micro-kernel over it (24 accumulators).</summary>
    static void GemmWide512(float* x, PackedMatrix w, float* y, int p0, int np, int r0, int r1)
    {
        int pairs = w.Pairs, n = w.Rows;
        long ws = (long)pairs * 32;
        var high = Vector512.Create(0xFFFF0000u);
        float* wide = WideScratch((int)(PanelsPerTask * WidePanelStride(2 * Block512)));
        for (int kb = 0; kb < pairs; kb += Block512)
        {
            int kc = Math.Min(Block512, pairs - kb), kc2 = 2 * kc;
            for (int p = 0; p < PanelsPerTask; p++)
            {
                float* dst = wide + p * WidePanelStride(kc2);
                if (p >= np)
                {
                    new Span<float>(dst, kc2 * 16).Clear();
                    continue;
                }
                ushort* src = w.Data + (p0 + p) * ws + (long)kb * 32;
                for (int j = 0; j < kc; j++)
                {
                    // the same panel's next block, 4 KB on: the hardware prefetcher stops at the page boundary
                    if (Sse.IsSupported) Sse.Prefetch1(src + (j + Block512) * 32);
                    var u = Vector512.Load((uint*)(src + j * 32));
                    (u & high).AsSingle().Store(dst + 2 * j * 16);
                    (u << 16).AsSingle().Store(dst + (2 * j + 1) * 16);
                }
            }
            int cols = Math.Min(PanelsPerTask * 16, n - p0 * 16);
            for (int r = r0; r < r1; r += Tile512)
            {
                float* xt = x + ((long)(r / Tile512) * 2 * pairs + 2 * kb) * Tile512, yt = y + (long)r * n + p0 * 16;
                int rows = Math.Min(Tile512, r1 - r);
                if (rows == Tile512 && cols == PanelsPerTask * 16) Tile6x4(xt, wide, kc2, yt, n, kb > 0);
                else EdgeTile(&Tile6x4, xt, wide, kc2, yt, n, rows, cols, Tile512, PanelsPerTask * 16, kb > 0);
            }
        }
    }

    /// <summary>Floats from one widened panel to the next in a Vector512 block: a line more than the
    /// panel's (2·kc, 16), so that the micro-kernel's four weight streams fall in different L1 sets.</summary>
    static long WidePanelStride(int kc2) => (long)kc2 * 16 + 16;

    /// <summary>Panel p0 + i of a group of np as a stream of packed pairs. Panels past the group's last
    /// read its first again; their sums are never stored.</summary>
    static uint* PanelStream(PackedMatrix w, int p0, int np, int i) =>
        (uint*)(w.Data + (p0 + (i < np ? i : 0)) * (long)w.Pairs * 32);

    /// <summary>
    /// One row (batch-1 decode): bound by reading the weights, so they stream straight from the packed
    /// matrix, widened in registers instead of through a block copy; four panels, one accumulator each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemvStream512(float* x, PackedMatrix w, float* y, int p0, int np, int row)
    {
        int pairs = w.Pairs, n = w.Rows;
        var high = Vector512.Create(0xFFFF0000u);
        float* xt = x + (long)(row / Tile512) * 2 * pairs * Tile512 + row % Tile512;
        uint* w0 = PanelStream(w, p0, np, 0), w1 = PanelStream(w, p0, np, 1);
        uint* w2 = PanelStream(w, p0, np, 2), w3 = PanelStream(w, p0, np, 3);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int j = 0; j < pairs; j++)
        {
            var u0 = Vector512.Load(w0 + j * 16); var u1 = Vector512.Load(w1 + j * 16);
            var u2 = Vector512.Load(w2 + j * 16); var u3 = Vector512.Load(w3 + j * 16);
            var odd = Vector512.Create(xt[2L * j * Tile512]);
            c0 = Vector512.FusedMultiplyAdd(odd, (u0 & high).AsSingle(), c0); c1 = Vector512.FusedMultiplyAdd(odd, (u1 & high).AsSingle(), c1);
            c2 = Vector512.FusedMultiplyAdd(odd, (u2 & high).AsSingle(), c2); c3 = Vector512.FusedMultiplyAdd(odd, (u3 & high).AsSingle(), c3);
            var even = Vector512.Create(xt[(2L * j + 1) * Tile512]);
            c0 = Vector512.FusedMultiplyAdd(even, (u0 << 16).AsSingle(), c0); c1 = Vector512.FusedMultiplyAdd(even, (u1 << 16).AsSingle(), c1);
            c2 = Vector512.FusedMultiplyAdd(even, (u2 << 16).AsSingle(), c2); c3 = Vector512.FusedMultiplyAdd(even, (u3 << 16).AsSingle(), c3);
        }
        StoreRow512(y + (long)row * n, p0, n, c0, c1, c2, c3);
    }

    /// <summary>6 rows of x (2·kc, 6) times 4 widened panels (4, 2·kc, 16; <see cref="WidePanelStride"/> apart) into c (6, ldc), 64 columns,
    /// continuing c's chain when accumulate. No calls: the 24 accumulators, 4 weight vectors and the
    /// broadcast stay in the 32 zmm registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile6x4(float* x, float* wide, int kc2, float* c, long ldc, bool accumulate)
    {
        float* c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc, c4 = c + 4 * ldc, c5 = c + 5 * ldc;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;
        if (accumulate)
        {
            c00 = Vector512.Load(c); c01 = Vector512.Load(c + 16); c02 = Vector512.Load(c + 32); c03 = Vector512.Load(c + 48);
            c10 = Vector512.Load(c1); c11 = Vector512.Load(c1 + 16); c12 = Vector512.Load(c1 + 32); c13 = Vector512.Load(c1 + 48);
            c20 = Vector512.Load(c2); c21 = Vector512.Load(c2 + 16); c22 = Vector512.Load(c2 + 32); c23 = Vector512.Load(c2 + 48);
            c30 = Vector512.Load(c3); c31 = Vector512.Load(c3 + 16); c32 = Vector512.Load(c3 + 32); c33 = Vector512.Load(c3 + 48);
            c40 = Vector512.Load(c4); c41 = Vector512.Load(c4 + 16); c42 = Vector512.Load(c4 + 32); c43 = Vector512.Load(c4 + 48);
            c50 = Vector512.Load(c5); c51 = Vector512.Load(c5 + 16); c52 = Vector512.Load(c5 + 32); c53 = Vector512.Load(c5 + 48);
        }
        long ps = WidePanelStride(kc2);
        for (int i = 0; i < kc2; i++)
        {
            float* wi = wide + i * 16;
            var b0 = Vector512.Load(wi);
            var b1 = Vector512.Load(wi + ps);
            var b2 = Vector512.Load(wi + 2 * ps);
            var b3 = Vector512.Load(wi + 3 * ps);
            float* xi = x + i * Tile512;
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
            a = Vector512.Create(xi[4]);
            c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            c42 = Vector512.FusedMultiplyAdd(a, b2, c42); c43 = Vector512.FusedMultiplyAdd(a, b3, c43);
            a = Vector512.Create(xi[5]);
            c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            c52 = Vector512.FusedMultiplyAdd(a, b2, c52); c53 = Vector512.FusedMultiplyAdd(a, b3, c53);
        }
        c00.Store(c); c01.Store(c + 16); c02.Store(c + 32); c03.Store(c + 48);
        c10.Store(c1); c11.Store(c1 + 16); c12.Store(c1 + 32); c13.Store(c1 + 48);
        c20.Store(c2); c21.Store(c2 + 16); c22.Store(c2 + 32); c23.Store(c2 + 48);
        c30.Store(c3); c31.Store(c3 + 16); c32.Store(c3 + 32); c33.Store(c3 + 48);
        c40.Store(c4); c41.Store(c4 + 16); c42.Store(c4 + 32); c43.Store(c4 + 48);
        c50.Store(c5); c51.Store(c5 + 16); c52.Store(c5 + 32); c53.Store(c5 + 48);
    }

    /// <summary>Four panels of a y row from p0 on; panels past n are dropped.</summary>
    static void StoreRow512(float* yRow, int p0, int n,
        Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        Store512(yRow, p0, n, v0);
        Store512(yRow, p0 + 1, n, v1);
        Store512(yRow, p0 + 2, n, v2);
        Store512(yRow, p0 + 3, n, v3);
    }

    static void Store512(float* yRow, int panel, int n, Vector512<float> v)
    {
        int c0 = panel * 16, cols = Math.Min(16, n - c0);
        if (cols == 16) v.Store(yRow + c0);
        else
            for (int i = 0; i < cols; i++) yRow[c0 + i] = v[i];
    }

    // ---- Vector256 + FMA ------------------------------------------------------------------

    /// <summary>
    /// Compute-bound rows: each panel's k block is widened to f32 once (16 KB, in L1), then every row
    /// tile of the task runs a 6 rows × 16 columns FMA micro-kernel over it.
    /// </summary>
    static void GemmWide256(float* x, PackedMatrix w, float* y, int p0, int np, int r0, int r1)
    {
        int pairs = w.Pairs, n = w.Rows;
        long ws = (long)pairs * 32;
        float* wide = WideScratch(2 * Block256 * 16);
        for (int kb = 0; kb < pairs; kb += Block256)
        {
            int kc = Math.Min(Block256, pairs - kb);
            for (int p = p0; p < p0 + np; p++)
            {
                ushort* src = w.Data + p * ws + (long)kb * 32;
                // The block widened next: the next panel's, or after the group's last the first's next
                // block (past the matrix after the last block: a prefetch never faults).
                ushort* next = p + 1 < p0 + np ? src + ws : w.Data + p0 * ws + (long)(kb + Block256) * 32;
                Widen256(src, next, kc, wide);
                int cols = Math.Min(16, n - p * 16);
                for (int r = r0; r < r1; r += Tile256)
                {
                    float* xt = x + ((long)(r / Tile256) * 2 * pairs + 2 * kb) * Tile256, yt = y + (long)r * n + p * 16;
                    int rows = Math.Min(Tile256, r1 - r);
                    if (rows == Tile256 && cols == 16) Tile6x16(xt, wide, 2 * kc, yt, n, kb > 0);
                    else EdgeTile(&Tile6x16, xt, wide, 2 * kc, yt, n, rows, cols, Tile256, 16, kb > 0);
                }
            }
        }
    }

    /// <summary>kc pairs of one panel (kc, 32) bf16 → (2·kc, 16) f32, each pair's odd elements first;
    /// `next`'s block is prefetched into L2 meanwhile (the hardware prefetcher stops at page boundaries).</summary>
    static void Widen256(ushort* src, ushort* next, int kc, float* dst)
    {
        var high = Vector256.Create(0xFFFF0000u);
        for (int j = 0; j < kc; j++)
        {
            Sse.Prefetch1(next + j * 32);
            var lo = Vector256.Load((uint*)(src + j * 32));
            var hi = Vector256.Load((uint*)(src + j * 32 + 16));
            float* d = dst + 32 * j;
            (lo & high).AsSingle().Store(d);
            (hi & high).AsSingle().Store(d + 8);
            Avx2.ShiftLeftLogical(lo, 16).AsSingle().Store(d + 16);
            Avx2.ShiftLeftLogical(hi, 16).AsSingle().Store(d + 24);
        }
    }

    /// <summary>
    /// 6 rows of x (2·kc, 6) times one widened panel (2·kc, 16) into c (6, ldc), 16 columns,
    /// continuing c's chain when accumulate. 12 accumulators, 2 weight vectors and a broadcast take
    /// 15 of the 16 ymm registers; no calls, so none of them is spilled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile6x16(float* x, float* wide, int kc2, float* c, long ldc, bool accumulate)
    {
        float* c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc, c4 = c + 4 * ldc, c5 = c + 5 * ldc;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        if (accumulate)
        {
            c00 = Vector256.Load(c); c01 = Vector256.Load(c + 8);
            c10 = Vector256.Load(c1); c11 = Vector256.Load(c1 + 8);
            c20 = Vector256.Load(c2); c21 = Vector256.Load(c2 + 8);
            c30 = Vector256.Load(c3); c31 = Vector256.Load(c3 + 8);
            c40 = Vector256.Load(c4); c41 = Vector256.Load(c4 + 8);
            c50 = Vector256.Load(c5); c51 = Vector256.Load(c5 + 8);
        }
        for (float* wi = wide, xi = x, end = wide + (long)kc2 * 16; wi < end; wi += 16, xi += Tile256)
        {
            var b0 = Avx.LoadAlignedVector256(wi);
            var b1 = Avx.LoadAlignedVector256(wi + 8);
            var a = Vector256.Create(xi[0]);
            c00 = Fma.MultiplyAdd(a, b0, c00); c01 = Fma.MultiplyAdd(a, b1, c01);
            a = Vector256.Create(xi[1]);
            c10 = Fma.MultiplyAdd(a, b0, c10); c11 = Fma.MultiplyAdd(a, b1, c11);
            a = Vector256.Create(xi[2]);
            c20 = Fma.MultiplyAdd(a, b0, c20); c21 = Fma.MultiplyAdd(a, b1, c21);
            a = Vector256.Create(xi[3]);
            c30 = Fma.MultiplyAdd(a, b0, c30); c31 = Fma.MultiplyAdd(a, b1, c31);
            a = Vector256.Create(xi[4]);
            c40 = Fma.MultiplyAdd(a, b0, c40); c41 = Fma.MultiplyAdd(a, b1, c41);
            a = Vector256.Create(xi[5]);
            c50 = Fma.MultiplyAdd(a, b0, c50); c51 = Fma.MultiplyAdd(a, b1, c51);
        }
        c00.Store(c); c01.Store(c + 8);
        c10.Store(c1); c11.Store(c1 + 8);
        c20.Store(c2); c21.Store(c2 + 8);
        c30.Store(c3); c31.Store(c3 + 8);
        c40.Store(c4); c41.Store(c4 + 8);
        c50.Store(c5); c51.Store(c5 + 8);
    }

    /// <summary>
    /// One row (batch-1 decode): bound by reading the weights, so four panels stream straight from the
    /// packed matrix, each (panel, pair) as two ymm widened in registers (shift for the even elements,
    /// mask for the odd ones); 8 independent accumulators cover the FMA latency.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemvStream256(float* x, PackedMatrix w, float* y, int p0, int np, int row)
    {
        int pairs = w.Pairs, n = w.Rows;
        var high = Vector256.Create(0xFFFF0000u);
        float* xt = x + (long)(row / Tile256) * 2 * pairs * Tile256 + row % Tile256;
        uint* w0 = PanelStream(w, p0, np, 0), w1 = PanelStream(w, p0, np, 1);
        uint* w2 = PanelStream(w, p0, np, 2), w3 = PanelStream(w, p0, np, 3);
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int j = 0; j < pairs; j++)
        {
            var xo = Vector256.Create(xt[2L * j * Tile256]);
            var xe = Vector256.Create(xt[(2L * j + 1) * Tile256]);
            var u = Vector256.Load(w0 + j * 16);
            c00 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c00));
            u = Vector256.Load(w0 + j * 16 + 8);
            c01 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c01));
            u = Vector256.Load(w1 + j * 16);
            c10 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c10));
            u = Vector256.Load(w1 + j * 16 + 8);
            c11 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c11));
            u = Vector256.Load(w2 + j * 16);
            c20 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c20));
            u = Vector256.Load(w2 + j * 16 + 8);
            c21 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c21));
            u = Vector256.Load(w3 + j * 16);
            c30 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c30));
            u = Vector256.Load(w3 + j * 16 + 8);
            c31 = Fma.MultiplyAdd(xe, Avx2.ShiftLeftLogical(u, 16).AsSingle(), Fma.MultiplyAdd(xo, (u & high).AsSingle(), c31));
        }
        float* yRow = y + (long)row * n;
        int cols = n - p0 * 16;
        Store256(yRow + p0 * 16, cols, c00, c01);
        Store256(yRow + p0 * 16 + 16, cols - 16, c10, c11);
        Store256(yRow + p0 * 16 + 32, cols - 32, c20, c21);
        Store256(yRow + p0 * 16 + 48, cols - 48, c30, c31);
    }

    /// <summary>
    /// A few rows (small-batch decode, ≤ 4, all in one x tile): still bound by reading the weights, so
    /// each panel streams once from the packed matrix, widened in registers, against 4 rows at a time
    /// (8 accumulators; x's rows past the call's are zero or unused and never stored).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GemmStream256(float* x, PackedMatrix w, float* y, int p0, int np, int r0, int rows)
    {
        int pairs = w.Pairs, n = w.Rows;
        long ws = (long)pairs * 32;
        var high = Vector256.Create(0xFFFF0000u);
        float* xt = x + (long)(r0 / Tile256) * 2 * pairs * Tile256 + r0 % Tile256;
        for (int p = p0; p < p0 + np; p++)
        {
            uint* wp = (uint*)(w.Data + p * ws);
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default;
            Vector256<float> c20 = default, c21 = default, c30 = default, c31 = default;
            float* xi = xt;
            for (int j = 0; j < pairs; j++, xi += 2 * Tile256)
            {
                var lo = Vector256.Load(wp + j * 16);
                var hi = Vector256.Load(wp + j * 16 + 8);
                var oddLo = (lo & high).AsSingle();
                var oddHi = (hi & high).AsSingle();
                var evenLo = Avx2.ShiftLeftLogical(lo, 16).AsSingle();
                var evenHi = Avx2.ShiftLeftLogical(hi, 16).AsSingle();
                var xo = Vector256.Create(xi[0]);
                var xe = Vector256.Create(xi[Tile256]);
                c00 = Fma.MultiplyAdd(xe, evenLo, Fma.MultiplyAdd(xo, oddLo, c00));
                c01 = Fma.MultiplyAdd(xe, evenHi, Fma.MultiplyAdd(xo, oddHi, c01));
                xo = Vector256.Create(xi[1]);
                xe = Vector256.Create(xi[Tile256 + 1]);
                c10 = Fma.MultiplyAdd(xe, evenLo, Fma.MultiplyAdd(xo, oddLo, c10));
                c11 = Fma.MultiplyAdd(xe, evenHi, Fma.MultiplyAdd(xo, oddHi, c11));
                xo = Vector256.Create(xi[2]);
                xe = Vector256.Create(xi[Tile256 + 2]);
                c20 = Fma.MultiplyAdd(xe, evenLo, Fma.MultiplyAdd(xo, oddLo, c20));
                c21 = Fma.MultiplyAdd(xe, evenHi, Fma.MultiplyAdd(xo, oddHi, c21));
                xo = Vector256.Create(xi[3]);
                xe = Vector256.Create(xi[Tile256 + 3]);
                c30 = Fma.MultiplyAdd(xe, evenLo, Fma.MultiplyAdd(xo, oddLo, c30));
                c31 = Fma.MultiplyAdd(xe, evenHi, Fma.MultiplyAdd(xo, oddHi, c31));
            }
            float* yp = y + (long)r0 * n + p * 16;
            int cols = n - p * 16;
            Store256(yp, cols, c00, c01);
            if (rows > 1) Store256(yp + n, cols, c10, c11);
            if (rows > 2) Store256(yp + 2L * n, cols, c20, c21);
            if (rows > 3) Store256(yp + 3L * n, cols, c30, c31);
        }
    }

    /// <summary>16 columns of y as two halves, `cols` of which exist (≤ 0: none).</summary>
    static void Store256(float* yp, int cols, Vector256<float> lo, Vector256<float> hi)
    {
        if (cols >= 16)
        {
            lo.Store(yp);
            hi.Store(yp + 8);
            return;
        }
        for (int i = 0; i < Math.Min(cols, 8); i++) yp[i] = lo[i];
        for (int i = 8; i < cols; i++) yp[i] = hi[i - 8];
    }
}
