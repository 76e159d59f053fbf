using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SteerEngine.Generation;

/// <summary>
/// exp in double for the sampler's approximate sums, over z = (logit − max) / T ≤ 0, and the fused
/// passes that compute it. Relative error against Math.Exp below 1e-15 for z ≥ −64; below −64 a term
/// is 0 (absolute error under 1.7e-28, nothing next to a total that is at least exp(0) = 1), which lets
/// a peaked distribution's pass skip almost every exp.
/// One algorithm at every width (Vector512, Vector256, scalar), so every width gives the scalar path's bits.
/// </summary>
static class SamplerExp
{
    /// <summary>Below this a term counts as 0.</summary>
    public const double Floor = -64;

    const double Log2E = 1.4426950408889634, Shifter = 6755399441055744.0; // 1.5 · 2^52: adding it rounds to an integer
    const double Ln2Hi = 0.6931471803691238, Ln2Lo = 1.9082149292705877e-10;  // ln 2 = hi + lo, hi · k exact for |k| < 2^11

    // exp(r) for |r| ≤ ln 2 / 2 by its Taylor series to r^12 (the r^13 term is below 2e-16 of the sum).
    const double C2 = 1.0 / 2, C3 = 1.0 / 6, C4 = 1.0 / 24, C5 = 1.0 / 120, C6 = 1.0 / 720, C7 = 1.0 / 5040, C8 = 1.0 / 40320,
        C9 = 1.0 / 362880, C10 = 1.0 / 3628800, C11 = 1.0 / 39916800, C12 = 1.0 / 479001600;

    /// <summary>exp(z) for z ≤ 0: k = round(z / ln 2), r = z − k ln 2, exp(z) = 2^k · exp(r).</summary>
    public static double Exp(double z)
    {
        if (!(z >= Floor)) return 0;
        double t = z * Log2E + Shifter, k = t - Shifter;
        double r = Math.FusedMultiplyAdd(-k, Ln2Lo, Math.FusedMultiplyAdd(-k, Ln2Hi, z));
        double p = C12;
        p = Math.FusedMultiplyAdd(p, r, C11); p = Math.FusedMultiplyAdd(p, r, C10); p = Math.FusedMultiplyAdd(p, r, C9);
        p = Math.FusedMultiplyAdd(p, r, C8); p = Math.FusedMultiplyAdd(p, r, C7); p = Math.FusedMultiplyAdd(p, r, C6);
        p = Math.FusedMultiplyAdd(p, r, C5); p = Math.FusedMultiplyAdd(p, r, C4); p = Math.FusedMultiplyAdd(p, r, C3);
        p = Math.FusedMultiplyAdd(p, r, C2); p = Math.FusedMultiplyAdd(p, r, 1.0); p = Math.FusedMultiplyAdd(p, r, 1.0);
        long scale = (BitConverter.DoubleToInt64Bits(t) + 1023) << 52;
        return p * BitConverter.Int64BitsToDouble(scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Exp(Vector512<double> z)
    {
        Vector512<double> t = Vector512.Create(Shifter) + z * Vector512.Create(Log2E);
        Vector512<double> k = t - Vector512.Create(Shifter);
        Vector512<double> r = Vector512.FusedMultiplyAdd(-k, Vector512.Create(Ln2Lo), Vector512.FusedMultiplyAdd(-k, Vector512.Create(Ln2Hi), z));
        Vector512<double> p = Vector512.Create(C12);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C11)); p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C10));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C9)); p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C8));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C7)); p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C5)); p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3)); p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0)); p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.0));
        Vector512<double> scale = Vector512.ShiftLeft(t.AsInt64() + Vector512.Create(1023L), 52).AsDouble();
        return (p * scale) & Vector512.GreaterThanOrEqual(z, Vector512.Create(Floor));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> Exp(Vector256<double> z)
    {
        Vector256<double> t = Vector256.Create(Shifter) + z * Vector256.Create(Log2E);
        Vector256<double> k = t - Vector256.Create(Shifter);
        Vector256<double> r = Vector256.FusedMultiplyAdd(-k, Vector256.Create(Ln2Lo), Vector256.FusedMultiplyAdd(-k, Vector256.Create(Ln2Hi), z));
        Vector256<double> p = Vector256.Create(C12);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C11)); p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C10));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C9)); p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C8));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C7)); p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C5)); p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3)); p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0)); p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.0));
        Vector256<double> scale = Vector256.ShiftLeft(t.AsInt64() + Vector256.Create(1023L), 52).AsDouble();
        return (p * scale) & Vector256.GreaterThanOrEqual(z, Vector256.Create(Floor));
    }

    /// <summary>
    /// Σ exp((logit − max) · invT) over each block of <paramref name="block"/> tokens into
    /// <paramref name="sums"/> (any order: these sums steer, the token's bits never depend on them); returns their total.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double BlockSums(ReadOnlySpan<float> logits, float max, float invT, int block, Span<double> sums)
    {
        double total = 0;
        for (int b = 0, first = 0; first < logits.Length; b++, first += block)
            total += sums[b] = Sum(logits.Slice(first, Math.Min(block, logits.Length - first)), max, invT, default, default, default, default);
        return total;
    }

    /// <summary>
    /// z = (logit − max) · invT (the reference's float rounding) into <paramref name="z"/>, exp(z) into
    /// <paramref name="e"/>, and per rung r the mass Σ e over z ≥ rungs[r] into <paramref name="above"/>; returns Σ e.
    /// </summary>
    public static double Terms(ReadOnlySpan<float> logits, float max, float invT, Span<float> z, Span<double> e, ReadOnlySpan<double> rungs, Span<double> above) =>
        Sum(logits, max, invT, z, e, rungs, above);

    /// <summary>Σ exp(z); z, e and the rungs' masses are written when given (not empty).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static double Sum(ReadOnlySpan<float> logits, float max, float invT, Span<float> zOut, Span<double> eOut, ReadOnlySpan<double> rungs, Span<double> above)
    {
        bool store = !zOut.IsEmpty;
        int n = logits.Length, i = 0, R = rungs.Length;
        double total = 0;
        above.Clear();
        if (Vector512.IsHardwareAccelerated)
        {
            Span<Vector512<double>> masses = stackalloc Vector512<double>[R];
            masses.Clear();
            Vector512<double> acc = Vector512<double>.Zero;
            Vector512<float> m = Vector512.Create(max), s = Vector512.Create(invT), floor = Vector512.Create((float)Floor);
            for (; i + 16 <= n; i += 16)
            {
                Vector512<float> z = (Vector512.Create(logits.Slice(i, 16)) - m) * s;
                if (store) z.CopyTo(zOut.Slice(i, 16));
                if (Vector512.LessThanAll(z, floor)) // every lane's term is 0
                {
                    if (store) eOut.Slice(i, 16).Clear();
                    continue;
                }
                (Vector512<double> lo, Vector512<double> hi) = Vector512.Widen(z);
                Vector512<double> elo = Exp(lo), ehi = Exp(hi);
                if (store) { elo.CopyTo(eOut.Slice(i, 8)); ehi.CopyTo(eOut.Slice(i + 8, 8)); }
                acc += elo + ehi;
                for (int r = 0; r < R; r++)
                {
                    Vector512<double> t = Vector512.Create(rungs[r]);
                    masses[r] += (elo & Vector512.GreaterThanOrEqual(lo, t)) + (ehi & Vector512.GreaterThanOrEqual(hi, t));
                }
            }
            total = Vector512.Sum(acc);
            for (int r = 0; r < R; r++) above[r] = Vector512.Sum(masses[r]);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Span<Vector256<double>> masses = stackalloc Vector256<double>[R];
            masses.Clear();
            Vector256<double> acc = Vector256<double>.Zero;
            Vector256<float> m = Vector256.Create(max), s = Vector256.Create(invT), floor = Vector256.Create((float)Floor);
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> z = (Vector256.Create(logits.Slice(i, 8)) - m) * s;
                if (store) z.CopyTo(zOut.Slice(i, 8));
                if (Vector256.LessThanAll(z, floor))
                {
                    if (store) eOut.Slice(i, 8).Clear();
                    continue;
                }
                (Vector256<double> lo, Vector256<double> hi) = Vector256.Widen(z);
                Vector256<double> elo = Exp(lo), ehi = Exp(hi);
                if (store) { elo.CopyTo(eOut.Slice(i, 4)); ehi.CopyTo(eOut.Slice(i + 4, 4)); }
                acc += elo + ehi;
                for (int r = 0; r < R; r++)
                {
                    Vector256<double> t = Vector256.Create(rungs[r]);
                    masses[r] += (elo & Vector256.GreaterThanOrEqual(lo, t)) + (ehi & Vector256.GreaterThanOrEqual(hi, t));
                }
            }
            total = Vector256.Sum(acc);
            for (int r = 0; r < R; r++) above[r] = Vector256.Sum(masses[r]);
        }
        for (; i < n; i++)
        {
            float z = (logits[i] - max) * invT;
            double e = Exp(z);
            if (store) { zOut[i] = z; eOut[i] = e; }
            total += e;
            for (int r = 0; r < R; r++) if (z >= rungs[r]) above[r] += e;
        }
        return total;
    }
}
