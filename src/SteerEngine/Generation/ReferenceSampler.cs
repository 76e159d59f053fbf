namespace SteerEngine.Generation;

/// <summary>
/// The plain sampler: sorts the whole vocabulary for every filtered draw. It defines which token a
/// (logits, options, uniform draw) gives; <see cref="Sampler"/> must give the same token and falls
/// back to this when its approximate sums cannot decide a cut with certainty.
/// </summary>
public static class ReferenceSampler
{
    /// <param name="logits">(V) raw logits; modified in place by the repetition penalty</param>
    /// <param name="history">tokens the repetition penalty applies to (prompt and generated)</param>
    /// <param name="uniform">a draw in [0, 1) from the sequence's own generator</param>
    public static int Sample(Span<float> logits, SamplingOptions options, double uniform, IReadOnlyCollection<int>? history = null)
    {
        Sampler.ApplyRepetitionPenalty(logits, options, history);
        if (options.Greedy) return ArgMax(logits);
        return Draw(logits, options, uniform);
    }

    /// <summary>The draw after the repetition penalty: temperature, top-k, top-p, min-p.</summary>
    internal static int Draw(ReadOnlySpan<float> logits, SamplingOptions options, double uniform)
    {
        float max = logits[ArgMax(logits)];
        float invT = 1f / options.Temperature;
        if (options.TopK == 0 && options.TopP >= 1f && options.MinP == 0f)
            return SampleFull(logits, max, invT, uniform);

        // Candidates sorted by logit, largest first; ties broken by token id for determinism.
        int[] order = new int[logits.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        float[] keys = logits.ToArray();
        Array.Sort(order, (a, b) => keys[b].CompareTo(keys[a]) is var c && c != 0 ? c : a.CompareTo(b));

        int n = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
        var probs = new double[n];
        for (int i = 0; i < n; i++) probs[i] = Math.Exp((keys[order[i]] - max) * invT);
        return DrawFiltered(probs, order, options, uniform);
    }

    /// <summary>The steps after the sort and top-k: top-p, then min-p, then the draw.</summary>
    /// <param name="probs">(n) exp((logit − max) / T) of the top-k candidates, largest first</param>
    internal static int DrawFiltered(ReadOnlySpan<double> probs, ReadOnlySpan<int> order, SamplingOptions options, double uniform)
    {
        int n = probs.Length;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += probs[i];
        if (options.TopP < 1f)
        {
            double cumulative = 0;
            for (int i = 0; i < n; i++)
            {
                cumulative += probs[i] / sum;
                if (cumulative >= options.TopP) { n = i + 1; break; }
            }
        }
        if (options.MinP > 0f)
        {
            // probs[0] is the largest: keep tokens with p ≥ min_p · p_max.
            int keep = 1;
            while (keep < n && probs[keep] >= options.MinP * probs[0]) keep++;
            n = keep;
        }
        return DrawSorted(probs[..n], order, uniform);
    }

    /// <summary>The draw over the survivors: the first whose running sum (in their order) passes uniform · their sum.</summary>
    internal static int DrawSorted(ReadOnlySpan<double> probs, ReadOnlySpan<int> order, double uniform)
    {
        int n = probs.Length;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += probs[i];

        double target = uniform * sum, acc = 0;
        for (int i = 0; i < n; i++)
        {
            acc += probs[i];
            if (target < acc) return order[i];
        }
        return order[n - 1];
    }

    /// <summary>Plain temperature sampling: one pass in token order, no sort.</summary>
    static int SampleFull(ReadOnlySpan<float> logits, float max, float invT, double uniform)
    {
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp((logits[i] - max) * invT);
        double target = uniform * sum, acc = 0;
        int last = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double p = Math.Exp((logits[i] - max) * invT);
            if (p > 0) last = i;
            acc += p;
            if (target < acc) return i;
        }
        return last;
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
