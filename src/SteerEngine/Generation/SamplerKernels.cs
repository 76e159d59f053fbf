using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SteerEngine.Generation;

/// <summary>Per-thread buffers of <see cref="Sampler"/>, grown to the vocabulary once per thread.</summary>
sealed class SamplerScratch
{
    [ThreadStatic] static SamplerScratch? _current;

    public float[] Z = [];               // (V) z = (logit − max) / T
    public double[] Terms = [];          // (V) ≈ exp(z)
    public int[] Candidates = [];        // (V) top-p / min-p: the tokens that may survive, in id order
    public int[] BucketOf = [];          // (V) each candidate's bucket of z
    public int[] BucketCount = new int[4096];
    public double[] BucketMass = new double[4096];
    public int[] Index = [];             // (V) candidate token ids
    public ulong[] Keys = [];            // (V) sort keys: descending logit, then id
    public ulong[] KeysTemp = [];        // (V) the radix sort's other buffer
    public double[] Probs = [];          // (V) the reference's terms of the candidates
    public float[] Values = [];          // top-k: candidate logits while the threshold rises
    double[] _blockSums = [];

    public static SamplerScratch For(int vocab)
    {
        SamplerScratch s = _current ??= new SamplerScratch();
        if (s.Z.Length < vocab)
        {
            s.Z = new float[vocab];
            s.Terms = new double[vocab];
            s.Candidates = new int[vocab];
            s.BucketOf = new int[vocab];
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
    /// <summary>Indices i with lo ≤ values[i] &lt; hi, in index order, into <paramref name="into"/>; returns their count.</summary>
    public static int GatherBetween(ReadOnlySpan<float> values, float lo, float hi, Span<int> into)
    {
        int n = values.Length, i = 0, count = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> l = Vector256.Create(lo), h = Vector256.Create(hi);
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> v = Vector256.Create(values.Slice(i, 8));
                uint mask = (Vector256.GreaterThanOrEqual(v, l) & Vector256.LessThan(v, h)).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    into[count++] = i + BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                }
            }
        }
        for (; i < n; i++) if (values[i] >= lo && values[i] < hi) into[count++] = i;
        return count;
    }

    /// <summary>
    /// into[i] = (int)min(last, z[i] · scale) for z[i] ≥ cut, else last + 1 (scale ≤ 0, z ≤ 0: a
    /// larger z never gets a larger index).
    /// </summary>
    public static void BucketIndices(ReadOnlySpan<float> z, float cut, float scale, int last, Span<int> into)
    {
        int n = z.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> c = Vector256.Create(cut), s = Vector256.Create(scale), l = Vector256.Create((float)last);
            Vector256<int> below = Vector256.Create(last + 1);
            for (; i + 8 <= n; i += 8)
            {
                Vector256<float> v = Vector256.Create(z.Slice(i, 8));
                Vector256<int> b = Vector256.ConvertToInt32(Vector256.Min(l, v * s));
                Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(v, c).AsInt32(), b, below).CopyTo(into.Slice(i, 8));
            }
        }
        for (; i < n; i++) into[i] = z[i] >= cut ? (int)MathF.Min(last, z[i] * scale) : last + 1;
    }

    /// <summary>Indices i with values[i] == value, in index order, into <paramref name="into"/>; returns their count.</summary>
    public static int GatherEqual(ReadOnlySpan<int> values, int value, Span<int> into)
    {
        int n = values.Length, i = 0, count = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<int> v = Vector256.Create(value);
            for (; i + 8 <= n; i += 8)
            {
                uint mask = Vector256.Equals(Vector256.Create(values.Slice(i, 8)), v).ExtractMostSignificantBits();
                while (mask != 0)
                {
                    into[count++] = i + BitOperations.TrailingZeroCount(mask);
                    mask &= mask - 1;
                }
            }
        }
        for (; i < n; i++) if (values[i] == value) into[count++] = i;
        return count;
    }

    /// <summary>How many values are ≥ threshold.</summary>
    public static int CountAtLeast(ReadOnlySpan<float> values, float threshold)
    {
        int n = values.Length, i = 0, count = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            Vector256<float> t = Vector256.Create(threshold);
            for (; i + 8 <= n; i += 8)
                count += BitOperations.PopCount(Vector256.GreaterThanOrEqual(Vector256.Create(values.Slice(i, 8)), t).ExtractMostSignificantBits());
        }
        for (; i < n; i++) if (values[i] >= threshold) count++;
        return count;
    }

    /// <summary>
    /// Into s.Index: every token whose logit is at least the k-th largest (ties included), in index
    /// order, found by one scan against a threshold that rises as candidates collect; returns the count.
    /// </summary>
    public static int LargestCandidates(ReadOnlySpan<float> logits, int k, SamplerScratch s)
    {
        int n = logits.Length, capacity = Math.Max(64, 8 * k);
        if (capacity >= n / 2) return GatherBetween(logits, float.NegativeInfinity, float.PositiveInfinity, s.Index);
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
                if (count == capacity && !Raise(logits, k, capacity, s, ref count, ref threshold)) return GatherBetween(logits, float.NegativeInfinity, float.PositiveInfinity, s.Index);
            }
        }
        for (; i < n; i++)
        {
            if (logits[i] < threshold) continue;
            index[count++] = i;
            if (count == capacity && !Raise(logits, k, capacity, s, ref count, ref threshold)) return GatherBetween(logits, float.NegativeInfinity, float.PositiveInfinity, s.Index);
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
