using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// Wᵀ in the GEMM's packed layout, straight from W: the backward of y = x · Wᵀ needs dx = dy · W = dy · (Wᵀ)ᵀ,
/// which the forward's MatMul computes on every ISA path when handed Wᵀ packed. Packed Wᵀ (Rows = W.Cols,
/// Cols = W.Rows) is the byte-for-byte the same as <see cref="ICpuKernels.Pack"/> of a transposed copy of W:
/// element (c, r) of Wᵀ = W[r, c] sits at ((c / 16) · Pairs + r / 2) · 32 + (c % 16) · 2 + r % 2, so each 64-byte
/// (panel, pair) block interleaves 16 consecutive columns of two consecutive rows of W. One panel per task;
/// its reads are 16-element runs of W's rows, and neighbouring panels share their cache lines.
/// </summary>
public static unsafe class TransposedPack
{
    /// <summary>Packs Wᵀ (W: (out, in) → packed (in, out)). The caller owns (disposes) the result.</summary>
    public static PackedMatrix Pack(WeightMatrix w)
    {
        if (w.DType is not (DType.BF16 or DType.F32 or DType.F16)) throw new NotSupportedException($"{w.Name}: cannot pack weights of type {w.DType}");
        var packed = new PackedMatrix(w.Name + "ᵀ", w.Cols, w.Rows);
        ushort* dst = packed.Data;
        int pairs = packed.Pairs, rows = w.Rows, cols = w.Cols;
        Parallel.For(0, packed.Panels, panel =>
        {
            int c0 = panel * 16, width = Math.Min(16, cols - c0);
            ushort* outp = dst + (long)panel * pairs * 32;
            for (int p = 0; p < pairs; p++, outp += 32)
            {
                new Span<ushort>(outp, 32).Clear();
                for (int e = 0; e < 2; e++)
                {
                    int r = 2 * p + e;
                    if (r >= rows) break;
                    long at = (long)r * cols + c0;
                    for (int c = 0; c < width; c++) outp[c * 2 + e] = Element(w, at + c);
                }
            }
        });
        return packed;
    }

    /// <summary>W's element at flat index i, rounded to bf16 as Pack rounds it (f32 and f16 to nearest even).</summary>
    static ushort Element(WeightMatrix w, long i) => w.DType switch
    {
        DType.BF16 => ((ushort*)w.Data)[i],
        DType.F32 => BFloat16Convert.FromF32RoundNearestEven(((float*)w.Data)[i]),
        _ => BFloat16Convert.FromF32RoundNearestEven((float)((Half*)w.Data)[i]),
    };
}
