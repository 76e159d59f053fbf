using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Generation;

/// <summary>One sequence to generate: its prompt tokens, sampling, steering and seed.</summary>
public sealed record GenerationRequest(
    int[] PromptTokens,
    int MaxNewTokens,
    SamplingOptions Sampling,
    IReadOnlyList<SteeringAdd>? Steering = null,
    ulong Seed = 0,
    IReadOnlyCollection<int>? StopTokens = null);

public sealed record GenerationResult(int[] Tokens, string FinishReason);

/// <summary>
/// Generates a batch of sequences together: one prefill of every prompt, then one decode step per
/// token for all unfinished sequences. Sampling stays out of the model: logits in, token out.
/// </summary>
public sealed class Generator(Transformer model)
{
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<GenerationRequest> requests, Action<int, int>? onToken = null)
    {
        int n = requests.Count;
        var caches = new KvCache[n];
        var steering = new SequenceSteering?[n];
        var rngs = new SplitMix64[n];
        var outputs = new List<int>[n];
        var finish = new string?[n];
        for (int i = 0; i < n; i++)
        {
            GenerationRequest r = requests[i];
            if (r.PromptTokens.Length == 0) throw new ArgumentException($"request {i} has an empty prompt");
            caches[i] = model.NewCache(r.PromptTokens.Length + r.MaxNewTokens);
            steering[i] = r.Steering is { Count: > 0 } adds ? new SequenceSteering(adds, r.PromptTokens.Length) : null;
            rngs[i] = new SplitMix64(r.Seed);
            outputs[i] = [];
            if (r.MaxNewTokens <= 0) finish[i] = "length";
        }

        var active = Enumerable.Range(0, n).Where(i => finish[i] is null).ToList();
        var batch = active.Select(i => new ForwardSequence(caches[i], requests[i].PromptTokens, steering[i])).ToList();
        while (active.Count > 0)
        {
            float[][] logits = model.Forward(batch);
            var next = new List<int>();
            for (int b = 0; b < active.Count; b++)
            {
                int i = active[b];
                GenerationRequest r = requests[i];
                int token = Sampler.Sample(logits[b], r.Sampling, rngs[i].NextOpenUnit());
                outputs[i].Add(token);
                onToken?.Invoke(i, token);
                if (r.StopTokens?.Contains(token) == true) finish[i] = "stop";
                else if (outputs[i].Count >= r.MaxNewTokens) finish[i] = "length";
                else next.Add(i);
            }
            active = next;
            batch = active.Select(i => new ForwardSequence(caches[i], [outputs[i][^1]], steering[i])).ToList();
        }
        return Enumerable.Range(0, n).Select(i => new GenerationResult(outputs[i].ToArray(), finish[i]!)).ToList();
    }
}
