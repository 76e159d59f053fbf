using System.Text.Json;
using SteerEngine.Capture;
using SteerEngine.Model;
using SteerEngine.Training;

namespace SteerEngine.Cli.Demo;

/// <summary>One contrastive pair of the demo data: the same answer with the trait's words of one value or the other.</summary>
public sealed record ContrastPair(string Question, string Positive, string Negative);

/// <summary>
/// A trait direction from the demo's contrastive pairs, in either of two ways. Mean difference: the
/// response-averaged hidden state at one block's output, averaged over the positive answers, minus the
/// same over the negative answers. BiPO: a vector trained so that adding it makes the positive answer
/// likelier than the negative one, and subtracting it the reverse. Each answer follows its
/// chat-formatted question, as the model saw such answers in training.
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
        var positive = ResponseStates(lm, pairs.Select(p => (p.Question, p.Positive)).ToList());
        var negative = ResponseStates(lm, pairs.Select(p => (p.Question, p.Negative)).ToList());
        return VectorExtraction.Extract(positive, negative, ExtractionMethod.MeanDiff)[layer + 1]; // HF numbering: entry i = output of block i-1
    }

    /// <summary>Per text, the hidden states averaged over the answer's tokens at every entry (HF numbering). (texts, entries, H)</summary>
    static List<float[][]> ResponseStates(LanguageModel lm, IReadOnlyList<(string Question, string Answer)> texts)
    {
        var examples = texts.Select((t, i) =>
        {
            int[] prompt = lm.EncodePrompt(t.Question), answer = lm.Tokenizer.Encode(t.Answer, addBos: false);
            if (answer.Length == 0) throw new ArgumentException($"pair text {i}: the answer is empty");
            return new CaptureExample([.. prompt, .. answer], prompt.Length);
        }).ToList();
        return ActivationCollector.Collect(lm.Model, examples, [Reduction.ResponseAvg], BatchSize).Select(r => r[Reduction.ResponseAvg]).ToList();
    }

    /// <summary>BiPO preference pairs: the question as the user turn, chosen = the positive answer, rejected = the negative one.</summary>
    public static IReadOnlyList<PreferencePair> PreferencePairs(LanguageModel lm, IReadOnlyList<ContrastPair> pairs) =>
        pairs.Select(p => PreferenceData.FromText(lm, p.Question, p.Positive, p.Negative)).ToList();

    /// <summary>
    /// BiPO settings for the demo model: 2 epochs of 16 steps (batch 4 of the 64 pairs), lr 0.1 after 4 warm-up
    /// steps, β 0.1, seed 11. About 6 s on two cores; the mood vector comes out with norm ≈ 14, and a multiplier
    /// of ±1 moves the happy share from about a half to about 0.2 / 0.8 (models/demo/RECIPE.md).
    /// </summary>
    public static BipoOptions DemoBipoOptions { get; } = new() { Epochs = 2, LearningRate = 0.1, WarmupSteps = 4, Beta = 0.1, BatchSize = 4, Seed = 11 };

    /// <summary>A BiPO vector steering the output of decoder block <paramref name="layer"/> toward the positive answers. (H)</summary>
    public static float[] Bipo(LanguageModel lm, IReadOnlyList<ContrastPair> pairs, int layer, BipoOptions options, Action<BipoStep>? onStep = null)
    {
        using var trainer = new BipoTrainer(lm.Transformer, options);
        return trainer.Train(layer, PreferencePairs(lm, pairs), onStep);
    }
}
