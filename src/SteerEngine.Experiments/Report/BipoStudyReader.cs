using System.Text.Json;
using System.Text.RegularExpressions;

namespace SteerEngine.Experiments.Report;

/// <summary>
/// Reads a study tree in the relationship-seeking BiPO study's layout:
/// <c>vector/{behavior}_{model}/layer{L}/evaluation_metrics.jsonl</c> (loss curves),
/// <c>vector_evals/{model}/layer{L}/generations_ep{N}.jsonl</c> (samples; perplexity from a "perplexity" field
/// or "token_logprobs") and <c>{task}_scores_ep{N}.jsonl</c> beside them (one record per judged sample: "id" and
/// "score", null when the judge gave none; a pairwise task's records carry "win" — 1, 0 or 0.5 — instead).
/// A score record's multiplier is its own "multiplier" / "steering_strength", else its generation's (joined by id).
/// </summary>
public static partial class BipoStudyReader
{
    [GeneratedRegex(@"^layer(\d+)$")] private static partial Regex LayerDir();
    [GeneratedRegex(@"^generations_ep(\d+)\.jsonl$")] private static partial Regex GenerationsFile();
    [GeneratedRegex(@"^(.+)_scores_ep(\d+)\.jsonl$")] private static partial Regex ScoresFile();

    public static bool Recognizes(string root) => Directory.Exists(Path.Combine(root, "vector_evals")) || Directory.Exists(Path.Combine(root, "vector"));

    public static StudyData Read(string root)
    {
        string configPath = Path.Combine(root, "config.json");
        var data = new StudyData { ConfigJson = File.Exists(configPath) ? File.ReadAllText(configPath) : null };
        ReadLosses(root, data);
        string evals = Path.Combine(root, "vector_evals");
        if (!Directory.Exists(evals)) { data.Notes.Add("no vector_evals/ folder: no generations or scores"); return data; }
        foreach (string modelDir in Directory.GetDirectories(evals).Order(StringComparer.Ordinal))
        {
            string model = Path.GetFileName(modelDir);
            foreach (string layerDir in Directory.GetDirectories(modelDir).Order(StringComparer.Ordinal))
            {
                Match lm = LayerDir().Match(Path.GetFileName(layerDir));
                if (!lm.Success) continue;
                int layer = int.Parse(lm.Groups[1].Value);
                var multipliers = new Dictionary<(int Epoch, string Id), double>();
                foreach (string file in Directory.GetFiles(layerDir).Order(StringComparer.Ordinal))
                {
                    Match gm = GenerationsFile().Match(Path.GetFileName(file));
                    if (!gm.Success) continue;
                    int epoch = int.Parse(gm.Groups[1].Value);
                    foreach (var (line, o) in Records(file))
                    {
                        string id = Id(o, file, line);
                        double m = Multiplier(o) ?? throw new InvalidDataException($"{file}:{line}: record has no \"multiplier\" or \"steering_strength\"");
                        multipliers[(epoch, id)] = m;
                        if (Perplexity(o) is double ppl)
                            data.Perplexities.Add(new PerplexityRecord(new Condition(new Candidate(model, layer, epoch), m), id, ppl));
                    }
                }
                foreach (string file in Directory.GetFiles(layerDir).Order(StringComparer.Ordinal))
                {
                    Match sm = ScoresFile().Match(Path.GetFileName(file));
                    if (!sm.Success) continue;
                    string task = sm.Groups[1].Value;
                    int epoch = int.Parse(sm.Groups[2].Value);
                    int unscored = 0;
                    foreach (var (line, o) in Records(file))
                    {
                        string id = Id(o, file, line);
                        double m = Multiplier(o) ?? (multipliers.TryGetValue((epoch, id), out double gmv) ? gmv
                            : throw new InvalidDataException($"{file}:{line}: record '{id}' has no multiplier and no generation with that id"));
                        var condition = new Condition(new Candidate(model, layer, epoch), m);
                        if (Number(o, "win") is double win) data.Pairwise.Add(new PairwiseRecord(condition, task, id, win));
                        else if ((Number(o, "score") ?? Number(o, task + "_score") ?? Number(o, task)) is double score)
                            data.Scores.Add(new ScoreRecord(condition, task, id, score));
                        else unscored++;
                    }
                    if (unscored > 0) data.Notes.Add($"{Path.GetRelativePath(root, file)}: {unscored} records without a score (left out)");
                }
            }
        }
        return data;
    }

    static void ReadLosses(string root, StudyData data)
    {
        string vectors = Path.Combine(root, "vector");
        if (!Directory.Exists(vectors)) { data.Notes.Add("no vector/ folder: no BiPO loss curves"); return; }
        foreach (string metrics in Directory.EnumerateFiles(vectors, "evaluation_metrics.jsonl", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string vectorName = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(metrics)))!;
            foreach (var (line, o) in Records(metrics))
            {
                int layer = (int)(Number(o, "layer") ?? throw new InvalidDataException($"{metrics}:{line}: no \"layer\""));
                int epoch = (int)(Number(o, "epoch") ?? throw new InvalidDataException($"{metrics}:{line}: no \"epoch\""));
                double train = Number(o, "train_loss") ?? throw new InvalidDataException($"{metrics}:{line}: no \"train_loss\"");
                data.Losses.Add(new LossRecord(vectorName, layer, epoch, train, Number(o, "test_pos_loss"), Number(o, "test_neg_loss")));
            }
        }
    }

    /// <summary>Each complete JSON object line with its 1-based line number; a torn last line (a writer killed mid-line) is skipped.</summary>
    internal static IEnumerable<(int Line, JsonElement Record)> Records(string path)
    {
        string[] lines = File.ReadAllLines(path);
        bool endsComplete = new FileInfo(path).Length == 0 || File.ReadAllBytes(path)[^1] == (byte)'\n';
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            JsonElement o;
            try
            {
                o = JsonDocument.Parse(lines[i]).RootElement;
            }
            catch (JsonException e)
            {
                if (i == lines.Length - 1 && !endsComplete) yield break;
                throw new InvalidDataException($"{path}:{i + 1}: not valid JSON ({e.Message})");
            }
            if (o.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}:{i + 1}: expected a JSON object");
            yield return (i + 1, o);
        }
    }

    static string Id(JsonElement o, string file, int line) =>
        o.TryGetProperty("id", out var id) ? id.ValueKind == JsonValueKind.String ? id.GetString()! : id.GetRawText()
            : throw new InvalidDataException($"{file}:{line}: record has no \"id\"");

    static double? Multiplier(JsonElement o) => Number(o, "multiplier") ?? Number(o, "steering_strength");

    internal static double? Number(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    static double? Perplexity(JsonElement o)
    {
        if (Number(o, "perplexity") is double p) return p;
        if (!o.TryGetProperty("token_logprobs", out var lp) || lp.ValueKind != JsonValueKind.Array || lp.GetArrayLength() == 0) return null;
        double sum = 0;
        foreach (JsonElement x in lp.EnumerateArray()) sum += x.GetDouble();
        return Math.Exp(-sum / lp.GetArrayLength());
    }
}
