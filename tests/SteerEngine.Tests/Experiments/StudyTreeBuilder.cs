using System.Globalization;
using System.Text;

namespace SteerEngine.Tests.Experiments;

/// <summary>
/// Writes a small BiPO study tree with scores chosen by hand: model "m", layers 1 and 2, epochs 1 and 2,
/// multipliers −1, 0, 1. Each condition's four trait scores are its mean + (−3, −1, 1, 3) and its four
/// coherence scores its mean + (−2, −1, 1, 2), so means, intervals, areas and the Pareto set are known.
/// </summary>
public static class StudyTreeBuilder
{
    public static readonly double[] Multipliers = [-1, 0, 1];

    /// <summary>(layer, epoch) → trait means and coherence means at −1, 0, 1.</summary>
    public static readonly Dictionary<(int Layer, int Epoch), (double[] Trait, double[] Coherence)> Means = new()
    {
        [(1, 1)] = ([10, 30, 50], [90, 80, 70]),
        [(1, 2)] = ([10, 40, 80], [90, 70, 40]),
        [(2, 1)] = ([20, 35, 40], [95, 90, 85]),
        [(2, 2)] = ([5, 50, 90], [60, 45, 30]),
    };

    static readonly double[] TraitOffsets = [-3, -1, 1, 3];
    static readonly double[] CoherenceOffsets = [-2, -1, 1, 2];

    public static void Write(string root)
    {
        File.WriteAllText(Path.Combine(root, "config.json"), "{\"name\": \"known-scores\", \"layers\": [1, 2]}");
        foreach (var ((layer, epoch), (trait, coherence)) in Means)
        {
            string dir = Path.Combine(root, "vector_evals", "m", $"layer{layer}");
            Directory.CreateDirectory(dir);
            var generations = new StringBuilder();
            var traitScores = new StringBuilder();
            var coherenceScores = new StringBuilder();
            var pairwise = new StringBuilder();
            for (int k = 0; k < Multipliers.Length; k++)
                for (int s = 0; s < 4; s++)
                {
                    string id = $"q{s}#L{layer}#m{N(Multipliers[k])}";
                    // Perplexity exp(1 + |m|): token log-probs all −(1 + |m|).
                    generations.Append($"{{\"id\":\"{id}\",\"multiplier\":{N(Multipliers[k])},\"response\":\"text\",\"token_logprobs\":[{N(-1 - Math.Abs(Multipliers[k]))},{N(-1 - Math.Abs(Multipliers[k]))}]}}\n");
                    traitScores.Append($"{{\"id\":\"{id}\",\"multiplier\":{N(Multipliers[k])},\"score\":{N(trait[k] + TraitOffsets[s])},\"raw\":\"{N(trait[k] + TraitOffsets[s])}\"}}\n");
                    // No multiplier here: the reader joins it from the generation with the same id.
                    coherenceScores.Append($"{{\"id\":\"{id}\",\"score\":{N(coherence[k] + CoherenceOffsets[s])}}}\n");
                    pairwise.Append($"{{\"id\":\"{id}\",\"multiplier\":{N(Multipliers[k])},\"win\":{(s < k + 1 ? 1 : 0)}}}\n");
                }
            coherenceScores.Append($"{{\"id\":\"q9#L{layer}#m0\",\"multiplier\":0,\"score\":null}}\n"); // a sample the judge could not score
            File.WriteAllText(Path.Combine(dir, $"generations_ep{epoch}.jsonl"), generations.ToString());
            File.WriteAllText(Path.Combine(dir, $"happy_scores_ep{epoch}.jsonl"), traitScores.ToString());
            File.WriteAllText(Path.Combine(dir, $"coherence_scores_ep{epoch}.jsonl"), coherenceScores.ToString());
            File.WriteAllText(Path.Combine(dir, $"preference_scores_ep{epoch}.jsonl"), pairwise.ToString());

            string vectorDir = Path.Combine(root, "vector", "happy_m", $"layer{layer}");
            Directory.CreateDirectory(vectorDir);
            File.AppendAllText(Path.Combine(vectorDir, "evaluation_metrics.jsonl"),
                $"{{\"id\":\"layer{layer}_epoch{epoch}\",\"layer\":{layer},\"epoch\":{epoch},\"train_loss\":{N(0.7 / epoch + 0.01 * layer)},\"test_pos_loss\":{N(0.75 / epoch)},\"test_neg_loss\":{N(0.8 / epoch)}}}\n");
        }
    }

    static string N(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
