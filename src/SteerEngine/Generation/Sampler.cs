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
/// Picks the next token from logits. The random draw comes from the sequence's own generator, so a
/// sequence's tokens never depend on its batch neighbours. Order of filters as in HF: repetition
/// penalty, temperature, top-k, top-p, min-p.
/// </summary>
public static class Sampler
{
    /// <param name="logits">(V) raw logits; modified in place by the repetition penalty</param>
    /// <param name="history">tokens the repetition penalty applies to (prompt and generated)</param>
    /// <param name="uniform">a draw in [0, 1) from the sequence's own generator</param>
    public static int Sample(Span<float> logits, SamplingOptions options, double uniform, IReadOnlyCollection<int>? history = null)
    {
        if (options.RepetitionPenalty != 1f && history is not null)
            foreach (int t in history)
            {
                float l = logits[t];
                logits[t] = l > 0 ? l / options.RepetitionPenalty : l * options.RepetitionPenalty;
            }
        if (options.Greedy) return ArgMax(logits);

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
        double sum = 0;
        for (int i = 0; i < n; i++) sum += probs[i] = Math.Exp((keys[order[i]] - max) * invT);

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
        sum = 0;
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

    /// <summary>log softmax(logits)[token], in double.</summary>
    public static double LogProb(ReadOnlySpan<float> logits, int token)
    {
        float max = logits[ArgMax(logits)];
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - max);
        return logits[token] - max - Math.Log(sum);
    }
}
