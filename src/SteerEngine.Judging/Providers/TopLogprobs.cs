namespace SteerEngine.Judging.Providers;

/// <summary>The k most likely tokens of one logits row, with their log-probabilities (log-softmax over the whole row).</summary>
public static class TopLogprobs
{
    public static List<(int Token, double Logprob)> Of(ReadOnlySpan<float> logits, int k)
    {
        double max = double.NegativeInfinity;
        foreach (float x in logits) if (x > max) max = x;
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        double logZ = max + Math.Log(sum);
        // Keep the k best in a small sorted list: k is at most 20 and V a few hundred thousand.
        var best = new List<(int Token, double Logprob)>(k + 1);
        for (int i = 0; i < logits.Length && k > 0; i++)
        {
            double lp = logits[i] - logZ;
            if (best.Count == k && lp <= best[^1].Logprob) continue;
            int at = best.FindIndex(b => lp > b.Logprob);
            best.Insert(at < 0 ? best.Count : at, (i, lp));
            if (best.Count > k) best.RemoveAt(k);
        }
        return best;
    }
}
