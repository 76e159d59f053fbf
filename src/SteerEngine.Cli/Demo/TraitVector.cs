using System.Text.Json;
using SteerEngine.Capture;
using SteerEngine.Model;

namespace SteerEngine.Cli.Demo;

/// <summary>One contrastive pair of the demo data: the same answer with the trait's words of one value or the other.</summary>
public sealed record ContrastPair(string Question, string Positive, string Negative);

/// <summary>
/// A trait direction by mean difference: the response-averaged hidden state at one block's output,
/// averaged over the positive answers, minus the same over the negative answers. Each answer is
/// run after its chat-formatted question, as the model saw such answers in training.
/// </summary>
public static class TraitVector
{
    const int BatchSize = 32;

    public static IReadOnlyList<ContrastPair> ReadPairs(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: contrastive pairs file not found");
        var pairs = new List<ContrastPair>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var pair = JsonSerializer.Deserialize<JsonElement>(line);
                pairs.Add(new ContrastPair(pair.GetProperty("question").GetString()!, pair.GetProperty("positive").GetString()!,
                    pair.GetProperty("negative").GetString()!));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}:{lineNumber}: expected {{\"question\", \"positive\", \"negative\"}} ({e.Message})");
            }
        }
        return pairs;
    }

    /// <summary>mean(positive) − mean(negative) of the output of decoder block <paramref name="layer"/>. (H)</summary>
    public static float[] MeanDifference(LanguageModel lm, IReadOnlyList<ContrastPair> pairs, int layer)
    {
        if (layer < 0 || layer >= lm.Config.NumLayers - 1)
            throw new ArgumentException($"layer {layer}: mean-difference extraction reads blocks 0..{lm.Config.NumLayers - 2} (the last block's output is only seen after the final norm)");
        float[] positive = MeanResponseState(lm, pairs.Select(p => (p.Question, p.Positive)).ToList(), layer);
        float[] negative = MeanResponseState(lm, pairs.Select(p => (p.Question, p.Negative)).ToList(), layer);
        return positive.Zip(negative, (a, b) => a - b).ToArray();
    }

    /// <summary>The hidden state at block <paramref name="layer"/>'s output, averaged over each answer's tokens, then over answers. (H)</summary>
    public static float[] MeanResponseState(LanguageModel lm, IReadOnlyList<(string Question, string Answer)> texts, int layer)
    {
        int H = lm.Config.HiddenSize, entry = layer + 1; // HF hidden-states numbering: entry i = output of block i-1
        var sum = new double[H];
        for (int first = 0; first < texts.Count; first += BatchSize)
        {
            var chunk = texts.Skip(first).Take(BatchSize).ToList();
            var promptLengths = new int[chunk.Count];
            var batch = new List<ForwardSequence>();
            for (int i = 0; i < chunk.Count; i++)
            {
                int[] prompt = lm.EncodePrompt(chunk[i].Question);
                int[] tokens = [.. prompt, .. lm.Tokenizer.Encode(chunk[i].Answer, addBos: false)];
                promptLengths[i] = prompt.Length;
                batch.Add(new ForwardSequence(lm.Transformer.NewCache(tokens.Length), tokens));
            }
            var recorder = new HiddenStateRecorder(lm.Config.NumLayers + 1, H);
            lm.Transformer.Forward(batch, recorder);
            for (int i = 0; i < chunk.Count; i++)
            {
                float[] states = recorder.Get(entry, i); // (T, H)
                int T = states.Length / H, n = T - promptLengths[i];
                if (n <= 0) throw new ArgumentException($"pair text {first + i}: the answer is empty");
                for (int t = promptLengths[i]; t < T; t++)
                    for (int h = 0; h < H; h++)
                        sum[h] += states[t * H + h] / (double)n;
            }
        }
        return sum.Select(s => (float)(s / texts.Count)).ToArray();
    }
}
