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
/// the parts that lie wholly on one side of a decision: those come from vectorized double exps
/// (<see cref="SamplerExp"/>) summed in any order, whose error is far below <see cref="Tolerance"/>.
/// When a decision lies within that tolerance of its threshold (by the bounds, a few draws in 10⁵ on a flat
/// distribution of 128 256 tokens, far fewer on a peaked one), the reference decides.
/// </para>
/// </summary>
public static partial class Sampler
{
    /// <summary>
    /// Bound on the relative error of one <see cref="SamplerExp"/> term against the reference's
    /// Math.Exp (measured below 1e-15; the tests check it with 5× room).
    /// </summary>
    internal const double DoubleExpError = 1e-14;

    /// <summary>
    /// How far two sums of the same n probabilities may lie apart, relative to their size, when one
    /// is the reference's (Math.Exp terms in its order) and the other adds approximate terms in any
    /// order: both exps' errors plus both summations' roundings (γₙ each), and the terms below
    /// <see cref="SamplerExp.Floor"/> counted as 0 (absolute, but every total is at least exp(0) = 1).
    /// </summary>
    internal static double Tolerance(double expError, int n) => 2 * expError + 2.0 * n * 1.12e-16 + n * Math.Exp(SamplerExp.Floor);

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
        int token = options.TopK > 0 ? SampleTopK(logits, max, invT, options, uniform, s)
            : options.TopP >= 1f && options.MinP == 0f ? SampleFull(logits, max, invT, uniform, s)
            : SampleNucleus(logits, max, invT, options, uniform, s);
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

    const int Unsure = -1;
    const int Block = 1024;

    /// <summary>
    /// Plain temperature sampling in token order, as the reference walks it: whole blocks of tokens
    /// are skipped by their approximate sums while the target lies clearly beyond them, and the block
    /// where the walk crosses the target is walked term by term with the reference's terms.
    /// </summary>
    static int SampleFull(ReadOnlySpan<float> logits, float max, float invT, double uniform, SamplerScratch s)
    {
        int V = logits.Length, blocks = (V + Block - 1) / Block;
        Span<double> sums = s.BlockSums(blocks);
        double total = SamplerExp.BlockSums(logits, max, invT, Block, sums);
        double target = uniform * total, tol = Tolerance(DoubleExpError, V) * total + 1e-300, acc = 0;
        for (int b = 0; b < blocks; b++)
        {
            if (acc + sums[b] < target - tol) { acc += sums[b]; continue; }
            for (int i = b * Block, end = Math.Min(V, (b + 1) * Block); i < end; i++)
            {
                double before = acc;
                acc += Math.Exp((logits[i] - max) * invT);
                if (target < acc) return acc - target > tol && target - before > tol ? i : Unsure;
            }
        }
        return Unsure;
    }

    /// <summary>Top-k (then top-p, min-p): the k largest logits by a threshold scan, sorted; the rest as the reference.</summary>
    static int SampleTopK(ReadOnlySpan<float> logits, float max, float invT, SamplingOptions o, double uniform, SamplerScratch s)
    {
        int k = Math.Min(o.TopK, logits.Length);
        int count = SamplerKernels.LargestCandidates(logits, k, s);
        ReadOnlySpan<int> order = SortByLogit(logits, count, s)[..k];
        Span<double> probs = s.Probs.AsSpan(0, k);
        for (int i = 0; i < k; i++) probs[i] = Math.Exp((logits[order[i]] - max) * invT);
        return ReferenceSampler.DrawFiltered(probs, order, o, uniform);
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
