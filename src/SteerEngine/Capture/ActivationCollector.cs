using SteerEngine.Model;
using SteerEngine.Runtime;

namespace SteerEngine.Capture;

/// <summary>A text run through the model for capture: its tokens and how many of them are prompt.</summary>
public sealed record CaptureExample(int[] Tokens, int PromptLength);

/// <summary>Runs examples through the model in batches and returns each one's reductions, (entries, H) per reduction.</summary>
public static class ActivationCollector
{
    public static List<Dictionary<Reduction, float[][]>> Collect(IForwardModel model, IReadOnlyList<CaptureExample> examples,
        IReadOnlyList<Reduction> reductions, int batchSize = 8, Action<int>? progress = null)
    {
        int entries = model.Config.NumLayers + 1, hidden = model.Config.HiddenSize;
        var results = new List<Dictionary<Reduction, float[][]>>(examples.Count);
        for (int first = 0; first < examples.Count; first += batchSize)
        {
            var batch = examples.Skip(first).Take(batchSize).ToList();
            foreach (var (e, i) in batch.Select((e, i) => (e, i)))
                if (e.PromptLength < 1 || e.PromptLength > e.Tokens.Length)
                    throw new ArgumentException($"example {first + i}: prompt length {e.PromptLength} is outside 1..{e.Tokens.Length}");
            var reducer = new ActivationReducer(entries, hidden, batch.Select(e => e.PromptLength).ToList());
            model.Forward(batch.Select(e => new ForwardSequence(model.NewCache(e.Tokens.Length), e.Tokens)).ToList(), reducer);
            for (int s = 0; s < batch.Count; s++)
                results.Add(reductions.ToDictionary(r => r, r => reducer.Get(s, r)));
            progress?.Invoke(results.Count);
        }
        return results;
    }
}
