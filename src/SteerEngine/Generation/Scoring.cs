using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Steering;

namespace SteerEngine.Generation;

/// <summary>Log-likelihood of a completion given a prompt: summed and mean log-prob and perplexity.</summary>
public sealed record CompletionScore(double SumLogprob, double MeanLogprob, int Tokens)
{
    public double Perplexity => Math.Exp(-MeanLogprob);
}

/// <summary>
/// Scores completions under the (optionally steered) model — for "perplexity by multiplier" and A/B
/// propensity. Each completion is run as prompt + completion; token i of the completion is scored by
/// the logits at the position before it. Steering positions are relative to the prompt's length, and
/// conditional terms are decided on the prompt alone.
/// </summary>
public static class Scoring
{
    public static IReadOnlyList<CompletionScore> ScoreCompletions(IForwardModel model, int[] prompt, IReadOnlyList<int[]> completions,
        IReadOnlyList<SteeringAdd>? steering = null, int batchSize = 8)
    {
        if (prompt.Length == 0) throw new ArgumentException("scoring needs a non-empty prompt (at least BOS)");
        var scores = new CompletionScore[completions.Count];
        if (steering is { Count: > 0 }) steering = ConditionalSteering.Resolve(model, prompt, steering).Terms;
        int V = model.Config.VocabSize;
        for (int first = 0; first < completions.Count; first += batchSize)
        {
            int n = Math.Min(batchSize, completions.Count - first);
            var batch = Enumerable.Range(first, n).Select(i =>
            {
                int[] tokens = [.. prompt, .. completions[i]];
                var s = steering is { Count: > 0 } ? new SequenceSteering(steering, prompt.Length) : null;
                return new ForwardSequence(model.NewCache(tokens.Length), tokens, s, allLogits: true);
            }).ToList();
            float[][] logits = model.Forward(batch);
            for (int b = 0; b < n; b++)
            {
                int[] completion = completions[first + b];
                double sum = 0;
                for (int t = 0; t < completion.Length; t++)
                    sum += Sampler.LogProb(logits[b].AsSpan((prompt.Length - 1 + t) * V, V), completion[t]);
                scores[first + b] = new CompletionScore(sum, completion.Length == 0 ? 0 : sum / completion.Length, completion.Length);
            }
        }
        return scores;
    }
}
