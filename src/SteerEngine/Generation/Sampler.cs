namespace SteerEngine.Generation;

/// <summary>Sampling settings of one request.</summary>
public sealed record SamplingOptions(float Temperature = 0f, float TopP = 1f, int TopK = 0)
{
    public bool Greedy => Temperature <= 0f;
}

/// <summary>
/// Picks the next token from logits: greedy, or temperature + top-k + top-p. The random draw comes
/// from a per-sequence generator so a sequence's tokens never depend on its batch neighbours.
/// </summary>
public static class Sampler
{
    /// <param name="logits">(V)</param>
    /// <param name="uniform">a draw in [0, 1) from the sequence's own generator</param>
    public static int Sample(ReadOnlySpan<float> logits, SamplingOptions options, double uniform)
    {
        if (options.Greedy) return ArgMax(logits);

        // Candidates sorted by logit, largest first; ties broken by token id for determinism.
        int[] order = new int[logits.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        float[] keys = logits.ToArray();
        Array.Sort(order, (a, b) => keys[b].CompareTo(keys[a]) is var c && c != 0 ? c : a.CompareTo(b));

        int n = options.TopK > 0 ? Math.Min(options.TopK, order.Length) : order.Length;
        var probs = new double[n];
        double max = keys[order[0]], sum = 0;
        for (int i = 0; i < n; i++) sum += probs[i] = Math.Exp((keys[order[i]] - max) / options.Temperature);

        if (options.TopP < 1f)
        {
            double cumulative = 0;
            for (int i = 0; i < n; i++)
            {
                cumulative += probs[i] / sum;
                if (cumulative >= options.TopP) { n = i + 1; break; }
            }
            sum = 0;
            for (int i = 0; i < n; i++) sum += probs[i];
        }

        double target = uniform * sum, acc = 0;
        for (int i = 0; i < n; i++)
        {
            acc += probs[i];
            if (target < acc) return order[i];
        }
        return order[n - 1];
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
