using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace SteerEngine.Generation;

public static partial class Sampler
{
    /// <summary>Buckets of z for top-p and min-p; bucket 0 holds the largest z.</summary>
    const int Buckets = 4096;

    /// <summary>Cuts of z whose masses the exp pass adds up, highest first: top-p's survivors usually lie above one of them.</summary>
    static readonly double[] Rungs = [-2, -4, -8, -16];

    /// <summary>
    /// Top-p and/or min-p over the whole vocabulary without sorting it. The candidates are the
    /// tokens above a cut of z that provably holds every survivor (for a peaked distribution, a
    /// handful). They fall into buckets by z, so a bucket's tokens all come before the next bucket's
    /// in the reference's order (logit descending, then id). The buckets' approximate masses say
    /// where the top-p cut and the draw lie; only the buckets they lie in are sorted and walked with
    /// the reference's terms.
    /// </summary>
    static int SampleNucleus(ReadOnlySpan<float> logits, float max, float invT, SamplingOptions o, double uniform, SamplerScratch s)
    {
        int V = logits.Length;
        Span<double> above = stackalloc double[Rungs.Length];
        double total = SamplerExp.Terms(logits, max, invT, s.Z.AsSpan(0, V), s.Terms.AsSpan(0, V), Rungs, above);
        ReadOnlySpan<float> z = s.Z.AsSpan(0, V);
        // An approximate sum of terms (a run of buckets) lies within this of the reference's sum of the same terms.
        double tolerance = Tolerance(DoubleExpError, V);

        float cut = float.PositiveInfinity;
        if (o.TopP < 1f)
        {
            float topPCut = float.NegativeInfinity;
            for (int r = 0; r < Rungs.Length; r++)
                if (above[r] >= o.TopP * total * (1 + 1e-6)) { topPCut = (float)Rungs[r]; break; }
            cut = topPCut;
        }
        if (o.MinP > 0f) cut = Math.Min(cut, MinPWindow(o.MinP).Below);
        int candidates = SamplerKernels.GatherBetween(z, cut, float.PositiveInfinity, s.Candidates);
        FillBuckets(z, s.Candidates.AsSpan(0, candidates), s.Terms, cut, float.IsFinite(cut) ? cut : TensorPrimitives.Min(z), s);

        int n = candidates;
        if (o.TopP < 1f && (n = TopPCount(logits, z, o.TopP, total, tolerance, candidates, s)) == Unsure) return Unsure;
        if (o.MinP > 0f) n = Math.Min(n, MinPCount(logits, z, o.MinP, s));
        return DrawAmongFirst(n, logits, z, uniform, 4 * tolerance * total + 1e-300, candidates, s);
    }

    /// <summary>
    /// s.BucketOf[t] = min(Buckets − 1, ⌊−z[t] · scale⌋) of every token (<c>Buckets</c> below the cut),
    /// with z ≥ <paramref name="lowest"/> spread over the buckets, and the candidates' counts and approximate masses per bucket.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void FillBuckets(ReadOnlySpan<float> z, ReadOnlySpan<int> candidates, ReadOnlySpan<double> e, float cut, float lowest, SamplerScratch s)
    {
        // z at or below the exp's floor (terms 0) all go to the last bucket.
        lowest = Math.Max(lowest, (float)SamplerExp.Floor);
        float scale = lowest < 0 ? (Buckets - 1) / -lowest : 0;
        Span<int> of = s.BucketOf.AsSpan(0, z.Length), count = s.BucketCount;
        Span<double> mass = s.BucketMass;
        SamplerKernels.BucketIndices(z, cut, -scale, Buckets - 1, of);
        count.Clear();
        mass.Clear();
        foreach (int t in candidates)
        {
            int b = of[t];
            count[b]++;
            mass[b] += e[t];
        }
    }

    /// <summary>Bucket b's tokens sorted as the reference sorts them.</summary>
    static ReadOnlySpan<int> SortedBucket(ReadOnlySpan<float> logits, int b, SamplerScratch s) =>
        SortByLogit(logits, SamplerKernels.GatherEqual(s.BucketOf.AsSpan(0, logits.Length), b, s.Index), s);

    /// <summary>
    /// The reference's top-p survivor count: the first rank where its running share
    /// Σ pⱼ / Σ p reaches top-p. The bucket where the approximate share crosses is walked with the
    /// reference's terms; a crossing within the shares' error bound is <see cref="Unsure"/>.
    /// </summary>
    static int TopPCount(ReadOnlySpan<float> logits, ReadOnlySpan<float> z, float topP, double total, double tolerance, int candidates, SamplerScratch s)
    {
        double prefix = 0;
        int rank = 0, b = 0;
        for (; b < Buckets && prefix + s.BucketMass[b] < topP * total; b++)
        {
            prefix += s.BucketMass[b];
            rank += s.BucketCount[b];
        }
        if (b == Buckets) return Unsure;
        ReadOnlySpan<int> order = SortedBucket(logits, b, s);
        double cumulative = prefix / total;
        for (int i = 0; i < order.Length; i++)
        {
            double before = cumulative;
            cumulative += Math.Exp(z[order[i]]) / total;
            if (cumulative < topP) continue;
            // Both shares' totals and prefixes within the tolerance, and the roundings of the divisions and additions.
            double bound = cumulative * (2 * tolerance + 4.0 * (rank + i + 2) * 1.12e-16) + 1e-300;
            return cumulative - topP > bound && topP - before > bound ? rank + i + 1 : Unsure;
        }
        return Unsure;
    }

    /// <summary>z above <c>Above</c> passes min-p for certain, z below <c>Below</c> fails; between, Math.Exp decides.</summary>
    static (float Below, float Above) MinPWindow(float minP)
    {
        double ln = Math.Log(minP), hair = 1e-6 * (1 + Math.Abs(ln)); // far wider than the roundings of z, Log and Exp
        return ((float)(ln - hair), (float)(ln + hair));
    }

    /// <summary>
    /// The reference's min-p survivor count: the longest run of the order, from its top token on,
    /// whose terms are ≥ min_p · p_top (p_top = exp(0) = 1). Tokens clearly above or below ln min_p
    /// are counted by z alone; those within a hair of it are sorted and tested with Math.Exp.
    /// </summary>
    static int MinPCount(ReadOnlySpan<float> logits, ReadOnlySpan<float> z, float minP, SamplerScratch s)
    {
        (float below, float above) = MinPWindow(minP);
        int keep = SamplerKernels.CountAtLeast(z, above);
        ReadOnlySpan<int> near = SortByLogit(logits, SamplerKernels.GatherBetween(z, below, above, s.Index), s);
        foreach (int t in near)
        {
            if (!(Math.Exp(z[t]) >= minP * 1.0)) break;
            keep++;
        }
        return Math.Max(1, keep);
    }

    /// <summary>
    /// The reference's draw among its first n tokens: the first whose running sum passes
    /// uniform · (their sum). The approximate bucket masses find the bucket; it is walked with the
    /// reference's terms, and a crossing within <paramref name="margin"/> of the target is <see cref="Unsure"/>.
    /// </summary>
    static int DrawAmongFirst(int n, ReadOnlySpan<float> logits, ReadOnlySpan<float> z, double uniform, double margin, int candidates, SamplerScratch s)
    {
        if (n > candidates) return Unsure;
        // The bucket holding rank n − 1; the survivors' sum is the masses before it and the first tokens of it.
        double sum = 0;
        int rank = 0, last = 0;
        for (; rank + s.BucketCount[last] < n; last++)
        {
            sum += s.BucketMass[last];
            rank += s.BucketCount[last];
        }
        if (n - rank == s.BucketCount[last]) sum += s.BucketMass[last];
        else
        {
            ReadOnlySpan<int> partial = SortedBucket(logits, last, s)[..(n - rank)];
            foreach (int t in partial) sum += Math.Exp(z[t]);
        }

        double target = uniform * sum, acc = 0;
        rank = 0;
        int b = 0;
        for (; b < last && acc + s.BucketMass[b] <= target; b++)
        {
            acc += s.BucketMass[b];
            rank += s.BucketCount[b];
        }
        ReadOnlySpan<int> order = SortedBucket(logits, b, s);
        for (int i = 0, end = Math.Min(order.Length, n - rank); i < end; i++)
        {
            double before = acc;
            acc += Math.Exp(z[order[i]]);
            if (target < acc) return acc - target > margin && target - before > margin ? order[i] : Unsure;
        }
        return Unsure;
    }
}
