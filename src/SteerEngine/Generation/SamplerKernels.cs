using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SteerEngine.Generation;

/// <summary>Per-thread buffers of <see cref="Sampler"/>, grown to the vocabulary once per thread.</summary>
sealed class SamplerScratch
{
    [ThreadStatic] static SamplerScratch? _current;

    public float[] Z = [], E = [];       // (V) z = (logit − max) / T; e ≈ exp(z)
    public int[] Index = [];             // (V) candidate token ids
    public ulong[] Keys = [];            // (V) sort keys: descending logit, then id
    public ulong[] KeysTemp = [];        // (V) the radix sort's other buffer
    public double[] Probs = [];          // (V) the reference's terms of the candidates
    public float[] Values = [];          // top-k: candidate logits while the threshold rises
    double[] _blockSums = [], _preciseZ = [];
    public double[] PreciseEArray = [];   // (V) exp(z) in double, for the second try

    public Span<double> PreciseZ(int n)
    {
        if (_preciseZ.Length < n) _preciseZ = new double[n];
        return _preciseZ.AsSpan(0, n);
    }

    public Span<double> PreciseE(int n)
    {
        if (PreciseEArray.Length != n) PreciseEArray = new double[n];
        return PreciseEArray;
    }

    public static SamplerScratch For(int vocab)
    {
        SamplerScratch s = _current ??= new SamplerScratch();
        if (s.Z.Length < vocab)
        {
            s.Z = new float[vocab];
            s.E = new float[vocab];
            s.Index = new int[vocab];
            s.Keys = new ulong[vocab];
            s.KeysTemp = new ulong[vocab];
            s.Probs = new double[vocab];
        }
        return s;
    }

    public Span<double> BlockSums(int blocks)
    {
        if (_blockSums.Length < blocks) _blockSums = new double[blocks];
        return _blockSums.AsSpan(0, blocks);
    }
}

/// <summary>The vectorized scans of <see cref="Sampler"/>; each has a plain loop as its tail.</summary>
static class SamplerKernels
{
    /// <summary>Σ x in double (any order: a sum that steers, not one the token's bits depend on).</summary>
    public static double SumAsDouble<T>(ReadOnlySpan<T> x) where T : unmanaged
    {
        if (typeof(T) == typeof(double)) return System.Numerics.Tensors.TensorPrimitives.Sum(MemoryMarshal.Cast<T, double>(x));
        ReadOnlySpan<float> f = MemoryMarshal.Cast<T, float>(x);
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && f.Length >= 8)
        {
            Vector256<double> a = Vector256<double>.Zero, b = Vector256<double>.Zero;
            for (; i + 8 <= f.Length; i += 8)
            {
                (Vector256<double> lo, Vector256<double> hi) = Vector256.Widen(Vector256.Create(f.Slice(i, 8)));
                a += lo;
                b += hi;
            }
            sum = Vector256.Sum(a + b);
        }
        for (; i < f.Length; i++) sum += f[i];
        return sum;
    }

    /// <summary>
    /// Σ e in double and, per threshold t, Σ e over z ≥ t (in float: these only choose a cut, which
    /// the exact pass then checks).
    /// </summary>
    public static double MassesAbove<T>(ReadOnlySpan<float> z, ReadOnlySpan<T> terms, ReadOnlySpan<float> thresholds, Span<float> above) where T : unmanaged
    {
        if (typeof(T) == typeof(double))
        {
            // The second try: the cut's masses are as good from the first try's float terms.
            ReadOnlySpan<double> d = MemoryMarshal.Cast<T, double>(terms);
            above.Clear();
            for (int i = 0; i < z.Length; i++)
                for (int r = 0; r < thresholds.Length && z[i] >= thresholds[r]; r++) above[r] += (float)d[i];
            return System.Numerics.Tensors.TensorPrimitives.Sum(d);
        }
        ReadOnlySpan<float> e = MemoryMarshal.Cast<T, float>(terms);
        int n = z.Length, rungs = thresholds.Length, j = 0;
        double total = 0;
        above.Clear();
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Span<Vector256<float>> acc = stackalloc Vector256<float>[rungs];
            Span<Vector256<float>> cut = stackalloc Vector256<float>[rungs];
            for (int r = 0; r < rungs; r++) { acc[r] = Vector256<float>.Zero; cut[r] = Vector256.Create(thresholds[r]); }
            Vector256<double> a = Vector256<double>.Zero, b = Vector256<double>.Zero;
            for (; j + 8 <= n; j += 8)
            {
                Vector256<float> zv = Vector256.Create(z.Slice(j, 8)), ev = Vector256.Create(e.Slice(j, 8));
                (Vector256<double> lo, Vector256<double> hi) = Vector256.Widen(ev);
                a += lo;
                b += hi;
                for (int r = 0; r < rungs; r++) acc[r] += ev & Vector256.GreaterThanOrEqual(zv, cut[r]);
            }
            total = Vector256.Sum(a + b);
            for (int r = 0; r < rungs; r++) above[r] = Vector256.Sum(acc[r]);
        }
        for (; j < n; j++)
        {
            total += e[j];
            for (int r = 0; r < rungs; r++) if (z[j] >= thresholds[r]) above[r] += e[j];
        }
        return total;
    }

    /// <summary>Indices i with values[i] ≥ threshold, in index order, into <paramref name="into"/>; returns their count.</summary>
    public static int Gather(ReadOnlySpan<float> values, float threshold, Span<int> into)
    {
        int n = values.Length, i = 0, count = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> t = Vector256.Create(threshold);
            for (; i + 8 <= n; i += 8)
            {
                uint mask = Vector256.GreaterThanOrEqual(Vector256.Create(values.Slice(i, 8)), t).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    into[count++] = i + BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                }
            }
        }
        for (; i < n; i++) if (values[i] >= threshold) into[count++] = i;
        return count;
    }

    /// <summary>
    /// Into s.Index: every token whose logit is at least the k-th largest (ties included), in index
    /// order, found by one scan against a threshold that rises as candidates collect; returns the count.
    /// </summary>
    public static int LargestCandidates(ReadOnlySpan<float> logits, int k, SamplerScratch s)
    {
        int n = logits.Length, capacity = Math.Max(64, 8 * k);
        if (capacity >= n / 2) return Gather(logits, float.NegativeInfinity, s.Index);
        if (s.Values.Length < capacity) s.Values = new float[capacity];
        Span<int> index = s.Index;
        int count = 0, i = 0;
        float threshold = float.NegativeInfinity;
        for (; i + 8 <= n; i += 8)
        {
            uint mask = Vector256.IsHardwareAccelerated
                ? Vector256.GreaterThanOrEqual(Vector256.Create(logits.Slice(i, 8)), Vector256.Create(threshold)).ExtractMostSignificantBits()
                : ScalarMask(logits.Slice(i, 8), threshold);
            while (mask != 0)
            {
                int j = i + BitOperations.TrailingZeroCount(mask);
                mask &= mask - 1;
                if (logits[j] < threshold) continue; // the threshold rose within this group
                index[count++] = j;
                if (count == capacity && !Raise(logits, k, capacity, s, ref count, ref threshold)) return Gather(logits, float.NegativeInfinity, s.Index);
            }
        }
        for (; i < n; i++)
        {
            if (logits[i] < threshold) continue;
            index[count++] = i;
            if (count == capacity && !Raise(logits, k, capacity, s, ref count, ref threshold)) return Gather(logits, float.NegativeInfinity, s.Index);
        }
        return count;
    }

    static uint ScalarMask(ReadOnlySpan<float> x, float t)
    {
        uint mask = 0;
        for (int j = 0; j < x.Length; j++) if (x[j] >= t) mask |= 1u << j;
        return mask;
    }

    /// <summary>Raises the threshold to the k-th largest candidate and drops those below it; false when ties fill the buffer.</summary>
    static bool Raise(ReadOnlySpan<float> logits, int k, int capacity, SamplerScratch s, ref int count, ref float threshold)
    {
        Span<float> values = s.Values.AsSpan(0, count);
        for (int j = 0; j < count; j++) values[j] = logits[s.Index[j]];
        values.Sort();
        threshold = values[count - k];
        int kept = 0;
        for (int j = 0; j < count; j++) if (logits[s.Index[j]] >= threshold) s.Index[kept++] = s.Index[j];
        count = kept;
        return kept < capacity / 2;
    }

    /// <summary>
    /// Sorts by the high 32 bits, keeping the order of equal ones: an LSD radix sort, three passes of
    /// 11 bits (a comparison sort of the vocabulary costs about ten times as much).
    /// </summary>
    public static void StableSortByHighHalf(Span<ulong> keys, Span<ulong> temp)
    {
        Span<int> starts = stackalloc int[2048];
        Span<ulong> from = keys, to = temp;
        for (int shift = 32; shift < 64; shift += 11)
        {
            starts.Clear();
            foreach (ulong k in from) starts[(int)(k >> shift) & 2047]++;
            for (int d = 0, sum = 0; d < 2048; d++) (starts[d], sum) = (sum, sum + starts[d]);
            foreach (ulong k in from) to[starts[(int)(k >> shift) & 2047]++] = k;
            Span<ulong> swap = from;
            from = to;
            to = swap;
        }
        from.CopyTo(keys); // three passes end in temp
    }

    /// <summary>Sort key of a finite logit: ascending keys = descending logits; −0 and +0 tie, as in float.CompareTo.</summary>
    public static uint DescendingKey(float logit)
    {
        int bits = BitConverter.SingleToInt32Bits(logit + 0f);
        uint ascending = bits < 0 ? ~(uint)bits : (uint)bits | 0x80000000u;
        return ~ascending;
    }

    /// <summary>The first i with x[i] == value (IEEE equality: −0 == +0).</summary>
    public static int IndexOfFirst(ReadOnlySpan<float> x, float value)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> v = Vector256.Create(value);
            for (; i + 8 <= x.Length; i += 8)
            {
                uint mask = Vector256.Equals(Vector256.Create(x.Slice(i, 8)), v).ExtractMostSignificantBits();
                if (mask != 0) return i + BitOperations.TrailingZeroCount(mask);
            }
        }
        for (; i < x.Length; i++) if (x[i] == value) return i;
        return -1;
    }
}
