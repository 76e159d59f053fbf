using System.Numerics.Tensors;

namespace SteerEngine.Generation;

/// <summary>Sampling settings of one request. Temperature 0 is greedy.</summary>
public sealed record SamplingOptions(
    float Temperature = 0f,
    float TopP = 1f,
    int TopK = 0,
    float MinP = 0f,
    float RepetitionPenalty = 1f)
{
    public bool Greedy => Temperature <= 0f;

    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature {Temperature} must be ≥ 0");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p {TopP} must be in (0, 1]");
        if (TopK < 0) throw new ArgumentException($"top-k {TopK} must be ≥ 0 (0 = off)");
        if (!(MinP >= 0 && MinP < 1)) throw new ArgumentException($"min-p {MinP} must be in [0, 1)");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw new ArgumentException($"repetition penalty {RepetitionPenalty} must be > 0");
    }
}

/// <summary>
/// Picks the next token from logits: the same token as <see cref="ReferenceSampler"/> for the same
/// (logits, options, uniform draw), without sorting the vocabulary. The random draw comes from the
/// sequence's own generator, so a sequence's tokens never depend on its batch neighbours. Order of
/// filters as in HF: repetition penalty, temperature, top-k, top-p, min-p.
/// <para>
/// How it stays exact: the reference adds its probabilities one by one in a fixed order (token order
/// for plain temperature sampling, sorted order with filters), and a different order or a faster exp
/// would change the last bits of those sums and, rarely, the token. So every sum that decides the
/// token is the reference's own sum over the reference's own terms (Math.Exp, same order), except
/// the parts that lie wholly on one side of a decision: those come from vectorized float exps
/// summed in double, whose error is far below <see cref="Tolerance"/>. When a decision lies within
/// that tolerance of its threshold (about one draw in 10⁵), the reference decides.
/// </para>
/// </summary>
public static class Sampler
{
    /// <summary>
    /// Bounds on the relative error of one approximate exp against the reference's Math.Exp: float
    /// (measured below 2e-7) and double (measured below 1e-15); the tests check both with 5× room.
    /// </summary>
    internal const double FloatExpError = 1e-6, DoubleExpError = 1e-14;

    /// <summary>
    /// How far two sums of the same n probabilities may lie apart, relative to their size, when one
    /// is the reference's (Math.Exp terms in its order) and the other adds approximate terms in any
    /// order: both exps' errors plus both summations' roundings (γₙ each).
    /// </summary>
    internal static double Tolerance(double expError, int n) => 2 * expError + 2.0 * n * 1.12e-16;

    /// <param name="logits">(V) raw logits; modified in place by the repetition penalty</param>
    /// <param name="history">tokens the repetition penalty applies to (prompt and generated)</param>
    /// <param name="uniform">a draw in [0, 1) from the sequence's own generator</param>
    public static int Sample(Span<float> logits, SamplingOptions options, double uniform, IReadOnlyCollection<int>? history = null)
    {
        ApplyRepetitionPenalty(logits, options, history);
        if (options.Greedy) return ArgMax(logits);
        float max = TensorPrimitives.Max(logits), min = TensorPrimitives.Min(logits);
        float invT = 1f / options.Temperature;
        if (!float.IsFinite(max) || !float.IsFinite(min) || !float.IsFinite(invT))
            return ReferenceSampler.Draw(logits, options, uniform);

        SamplerScratch s = SamplerScratch.For(logits.Length);
        int token;
        if (options.TopK > 0) token = SampleTopK(logits, max, invT, options, uniform, s);
        else
        {
            // z = (logit − max) / T exactly as the reference rounds it; e ≈ exp(z) for the sums that only steer.
            Span<float> z = s.Z.AsSpan(0, logits.Length), e = s.E.AsSpan(0, logits.Length);
            TensorPrimitives.Subtract(logits, max, z);
            TensorPrimitives.Multiply(z, invT, z);
            if (options.TopP < 1f || options.MinP == 0f) TensorPrimitives.Exp(z, e); // min-p alone needs no sums
            token = options.TopP >= 1f && options.MinP == 0f ? SampleFull(z, e, uniform, s) : SampleNucleus(logits, z, e, options, uniform, s);
            // A cut within the float sums' tolerance: once more with double exps (a flat distribution's
            // terms are about 1/V of the total, below the float sums' resolution).
            if (token == Unsure)
                token = options.TopP >= 1f && options.MinP == 0f ? SampleFull(z, PreciseTerms(z, s), uniform, s) : SampleNucleus(logits, z, PreciseTerms(z, s), options, uniform, s);
        }
        if (token >= 0) return token;
        Interlocked.Increment(ref _referenceDraws);
        return ReferenceSampler.Draw(logits, options, uniform);
    }

    static long _referenceDraws;
    /// <summary>Draws this process left to the reference because a sum lay within the tolerance of its threshold.</summary>
    public static long ReferenceDraws => Interlocked.Read(ref _referenceDraws);

    public static void ApplyRepetitionPenalty(Span<float> logits, SamplingOptions options, IReadOnlyCollection<int>? history)
    {
        if (options.RepetitionPenalty == 1f || history is null) return;
        foreach (int t in history)
        {
            float l = logits[t];
            logits[t] = l > 0 ? l / options.RepetitionPenalty : l * options.RepetitionPenalty;
        }
    }

    const int Unsure = -1, TooFew = -2;
    const int Block = 1024;

    /// <summary>exp(z) in double, for the second try.</summary>
    static double[] PreciseTerms(ReadOnlySpan<float> z, SamplerScratch s)
    {
        Span<double> zd = s.PreciseZ(z.Length), e = s.PreciseE(z.Length);
        TensorPrimitives.ConvertTruncating<float, double>(z, zd);
        TensorPrimitives.Exp(zd, e);
        return s.PreciseEArray;
    }

    /// <summary>
    /// Plain temperature sampling in token order, as the reference walks it: whole blocks of tokens
    /// are skipped by their approximate sums while the target lies clearly beyond them, and the block
    /// where the walk crosses the target is walked term by term with the reference's terms.
    /// </summary>
    static int SampleFull<T>(ReadOnlySpan<float> z, ReadOnlySpan<T> e, double uniform, SamplerScratch s) where T : unmanaged
    {
        int V = z.Length, blocks = (V + Block - 1) / Block;
        Span<double> sums = s.BlockSums(blocks);
        double total = 0;
        for (int b = 0; b < blocks; b++) total += sums[b] = SamplerKernels.SumAsDouble(e[(b * Block)..Math.Min(V, (b + 1) * Block)]);
        double target = uniform * total, tol = Tolerance(ExpError<T>(), V) * total + 1e-300, acc = 0;
        for (int b = 0; b < blocks; b++)
        {
            if (acc + sums[b] < target - tol) { acc += sums[b]; continue; }
            for (int i = b * Block, end = Math.Min(V, (b + 1) * Block); i < end; i++)
            {
                double before = acc;
                acc += Math.Exp(z[i]);
                if (target < acc) return acc - target > tol && target - before > tol ? i : Unsure;
            }
        }
        return Unsure;
    }

    static double ExpError<T>() => typeof(T) == typeof(double) ? DoubleExpError : FloatExpError;

    /// <summary>Top-k (then top-p, min-p): the k largest logits by a threshold scan, sorted; the rest as the reference.</summary>
    static int SampleTopK(ReadOnlySpan<float> logits, float max, float invT, SamplingOptions o, double uniform, SamplerScratch s)
    {
        int k = Math.Min(o.TopK, logits.Length);
        int count = SamplerKernels.LargestCandidates(logits, k, s);
        ReadOnlySpan<int> order = SortByLogit(logits, count, s)[..k];
        Span<float> z = s.Z.AsSpan(0, k);
        for (int i = 0; i < k; i++) z[i] = (logits[order[i]] - max) * invT;
        return Pick(order, z, o, uniform, complete: true, total: 0, tolerance: 0, minPBelowCandidates: false, s);
    }

    /// <summary>Cuts of the vocabulary's highest z that top-p and min-p are tried with, highest first.</summary>
    static readonly float[] Ladder = [-1f, -2f, -3f, -5f, -8f, -12f, -18f, -28f];

    /// <summary>
    /// Top-p and/or min-p over the whole vocabulary: only tokens above a cut of z are sorted. The cut
    /// is the highest rung of <see cref="Ladder"/> whose approximate mass holds the nucleus (and, for
    /// min-p, that no token below it can pass). If the sorted candidates turn out too few, all are.
    /// </summary>
    static int SampleNucleus<T>(ReadOnlySpan<float> logits, ReadOnlySpan<float> z, ReadOnlySpan<T> e, SamplingOptions o, double uniform, SamplerScratch s) where T : unmanaged
    {
        Span<float> above = stackalloc float[Ladder.Length];
        double total = 0, tolerance = Tolerance(ExpError<T>(), z.Length);
        float cut = float.NegativeInfinity;
        if (o.TopP < 1f)
        {
            total = SamplerKernels.MassesAbove(z, e, Ladder, above);
            for (int r = 0; r < Ladder.Length; r++)
                if (above[r] >= o.TopP * total * (1 + 1e-3)) { cut = Ladder[r]; break; }
        }
        float minPCut = o.MinP > 0f ? (float)(Math.Log(o.MinP) - 1e-3) : float.NegativeInfinity;
        if (o.MinP > 0f) cut = o.TopP < 1f ? Math.Max(cut, minPCut) : minPCut;

        if (cut > float.NegativeInfinity)
        {
            // With most of the vocabulary above the cut (a flat distribution), all of it is sorted:
            // then every sum is the reference's and no tolerance can leave the cut undecided.
            int count = SamplerKernels.Gather(z, cut, s.Index);
            if (2 * count < z.Length)
            {
                ReadOnlySpan<int> order = SortByLogit(logits, count, s);
                int token = Pick(order, Gathered(z, order, s), o, uniform, complete: false, total, tolerance, minPBelowCandidates: cut <= minPCut, s);
                if (token != TooFew) return token;
            }
        }
        int all = SamplerKernels.Gather(z, float.NegativeInfinity, s.Index);
        ReadOnlySpan<int> every = SortByLogit(logits, all, s);
        return Pick(every, Gathered(z, every, s), o, uniform, complete: true, total, tolerance, minPBelowCandidates: false, s);
    }

    static ReadOnlySpan<float> Gathered(ReadOnlySpan<float> z, ReadOnlySpan<int> order, SamplerScratch s)
    {
        Span<float> zs = s.E.AsSpan(0, order.Length); // e is no longer needed
        for (int i = 0; i < order.Length; i++) zs[i] = z[order[i]];
        return zs;
    }

    /// <summary>s.Index[0..count) sorted as the reference sorts: logit descending, then token id ascending.</summary>
    static ReadOnlySpan<int> SortByLogit(ReadOnlySpan<float> logits, int count, SamplerScratch s)
    {
        Span<ulong> keys = s.Keys.AsSpan(0, count);
        Span<int> index = s.Index.AsSpan(0, count);
        for (int i = 0; i < count; i++) keys[i] = (ulong)SamplerKernels.DescendingKey(logits[index[i]]) << 32 | (uint)index[i];
        // The candidates come in id order, so a stable sort by logit alone orders ties by id.
        if (count > 1024) SamplerKernels.StableSortByHighHalf(keys, s.KeysTemp.AsSpan(0, count));
        else keys.Sort();
        for (int i = 0; i < count; i++) index[i] = (int)(uint)keys[i];
        return index;
    }

    /// <summary>
    /// The reference's steps after its sort, over candidates that are a prefix of its order.
    /// <paramref name="complete"/>: they are all of the reference's n (top-k, or the whole vocabulary),
    /// so every sum is the reference's. Otherwise top-p divides by the approximate
    /// <paramref name="total"/> and must cross its threshold by more than the tolerance, and the
    /// survivors must end inside the candidates (else <see cref="TooFew"/>).
    /// </summary>
    /// <param name="z">(n) the candidates' (logit − max) / T, in candidate order</param>
    static int Pick(ReadOnlySpan<int> order, ReadOnlySpan<float> z, SamplingOptions o, double uniform, bool complete, double total,
        double tolerance, bool minPBelowCandidates, SamplerScratch s)
    {
        int n = order.Length;
        Span<double> probs = s.Probs.AsSpan(0, n);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += probs[i] = Math.Exp(z[i]);
        bool beyond = !complete; // the reference's survivors may reach past the candidates

        if (o.TopP < 1f)
        {
            double divisor = complete ? sum : total, cumulative = 0;
            for (int i = 0; i < n; i++)
            {
                double before = cumulative;
                cumulative += probs[i] / divisor;
                if (cumulative >= o.TopP)
                {
                    if (!complete && (cumulative - o.TopP <= CutTolerance(cumulative, i, tolerance) || o.TopP - before <= CutTolerance(cumulative, i, tolerance))) return Unsure;
                    n = i + 1;
                    beyond = false;
                    break;
                }
            }
            if (beyond && o.TopP - cumulative <= CutTolerance(cumulative, n, tolerance)) return Unsure;
        }
        if (o.MinP > 0f)
        {
            int keep = 1;
            while (keep < n && probs[keep] >= o.MinP * probs[0]) keep++;
            // Every token below the candidates has z < ln(min_p): the reference stops at the first of them.
            if (keep < n || minPBelowCandidates) beyond = false;
            n = keep;
        }
        if (beyond) return TooFew;

        return ReferenceSampler.DrawSorted(probs[..n], order, uniform);
    }

    /// <summary>How far a cumulative share over i+1 terms may lie from the reference's: the total's error plus the roundings of both sums.</summary>
    static double CutTolerance(double cumulative, int i, double tolerance) => cumulative * (tolerance + 4.0 * (i + 2) * 1.12e-16) + 1e-300;

    /// <summary>The first index of the largest logit (NaN as the reference treats it).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        float max = TensorPrimitives.Max(logits);
        return float.IsNaN(max) ? ReferenceSampler.ArgMax(logits) : SamplerKernels.IndexOfFirst(logits, max);
    }

    /// <summary>log softmax(logits)[token], in double.</summary>
    public static double LogProb(ReadOnlySpan<float> logits, int token)
    {
        float max = logits[ArgMax(logits)];
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - max);
        return logits[token] - max - Math.Log(sum);
    }
}
