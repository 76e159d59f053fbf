namespace SteerEngine.Generation;

/// <summary>A token and its log-probability under the model's (raw-logit) distribution.</summary>
public readonly record struct TokenLogprob(int Token, float Logprob)
{
    /// <summary>The most alternatives a request may ask for per token (OpenAI's top_logprobs limit).</summary>
    public const int MaxTop = 20;

    /// <summary>The <paramref name="k"/> most likely tokens of log softmax(logits), most likely first; ties by token id.</summary>
    public static TokenLogprob[] Top(ReadOnlySpan<float> logits, int k)
    {
        k = Math.Min(k, logits.Length);
        // Insertion into a sorted array of k ids: one pass, no sort of the vocabulary.
        int[] best = new int[k];
        int count = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (count == k && !(logits[i] > logits[best[k - 1]])) continue;
            int at = count < k ? count++ : k - 1;
            while (at > 0 && logits[i] > logits[best[at - 1]]) { best[at] = best[at - 1]; at--; }
            best[at] = i;
        }
        float max = logits[best[0]];
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - max);
        double logZ = max + Math.Log(sum);
        var top = new TokenLogprob[k];
        for (int j = 0; j < k; j++) top[j] = new TokenLogprob(best[j], (float)(logits[best[j]] - logZ));
        return top;
    }
}
