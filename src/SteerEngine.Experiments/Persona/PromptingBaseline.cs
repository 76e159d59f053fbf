using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;
using SteerEngine.Judging.Data;

namespace SteerEngine.Experiments.Persona;

/// <summary>One level of the prompting baseline: the level the instruction asks for and the steering multiplier it is matched with.</summary>
public sealed record TraitLevel(int Level, double Multiplier);

/// <summary>One row of the baseline's table: mean trait score of the prompted and steered answers, and the pairwise verdicts at that level.</summary>
public sealed record BaselineRow(TraitLevel Level, double Prompted, double Steered, int Pairs, double SteeredMoreTrait)
{
    /// <summary>The steered answer wins when it moves further the way the level asks: more trait above the middle, less below; none at the middle.</summary>
    public double? SteeredWinRate => Level.Multiplier > 0 ? SteeredMoreTrait : Level.Multiplier < 0 ? 1 - SteeredMoreTrait : null;
}

/// <summary>
/// The prompting baseline: does steering control a trait better than asking for it? 7 levels match the multipliers
/// −1.5…+1.5 in steps of 0.5, 9 levels −2…+2; level k of n is asked for with a system prompt built from the trait's
/// first instruction pair, and the steered answers use multiplier × scale with no system prompt.
/// </summary>
public static class PromptingBaseline
{
    public static IReadOnlyList<TraitLevel> Levels(int count) => count switch
    {
        7 or 9 => Enumerable.Range(1, count).Select(k => new TraitLevel(k, (k - (count + 1) / 2) * 0.5)).ToList(),
        _ => throw new ArgumentException($"--levels {count}: expected 7 (multipliers −1.5…+1.5) or 9 (−2…+2)"),
    };

    public static string Instruction(string trait, InstructionPair pair, int level, int count) =>
        $"Show the trait '{trait}' at level {level} on a scale from 1 to {count}. Level 1 means: {pair.Neg} " +
        $"Level {count} means: {pair.Pos} Level {(count + 1) / 2} is neutral. Answer at level {level}.";

    /// <summary>The answers file: one record per (level, question, sample) in that order, so prompted and steered pair up by question and occurrence.</summary>
    public static void WriteAnswers(string path, string method, IReadOnlyList<(TraitLevel Level, string Question)> rows, IReadOnlyList<string> answers)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < rows.Count; i++)
            sb.Append(new JsonObject
            {
                ["id"] = $"{method}_{i}", ["question"] = rows[i].Question, ["answer"] = answers[i], ["method"] = method,
                ["level"] = rows[i].Level.Level.ToString(CultureInfo.InvariantCulture), ["multiplier"] = rows[i].Level.Multiplier,
            }.ToJsonString()).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>Mean score per level (the item field "level") of one rubric column in a judged file.</summary>
    public static Dictionary<int, double> MeanByLevel(string judged, string column)
    {
        var sums = new Dictionary<int, (double Sum, int N)>();
        foreach (JsonElement r in JudgeRecord.Read(judged))
        {
            if (r.GetProperty("column").GetString() != column || r.GetProperty("score").ValueKind != JsonValueKind.Number) continue;
            int level = int.Parse(r.GetProperty("fields").GetProperty("level").GetString()!, CultureInfo.InvariantCulture);
            var (s, n) = sums.GetValueOrDefault(level);
            sums[level] = (s + r.GetProperty("score").GetDouble(), n + 1);
        }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.N);
    }

    public static string Markdown(string trait, double scale, IReadOnlyList<BaselineRow> rows)
    {
        string F(double? x) => x is double v && !double.IsNaN(v) ? v.ToString("0.00", CultureInfo.InvariantCulture) : "–";
        var sb = new StringBuilder($"# prompting baseline: {trait}\n\n");
        sb.Append($"steered multiplier = level multiplier × {scale.ToString(CultureInfo.InvariantCulture)}\n\n");
        sb.Append("| level | multiplier | prompted score | steered score | pairs | steered shows more trait | steered win rate |\n|---|---|---|---|---|---|---|\n");
        foreach (BaselineRow r in rows)
            sb.Append($"| {r.Level.Level} | {r.Level.Multiplier.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture)} | {F(r.Prompted)} | {F(r.Steered)} | {r.Pairs} | {F(r.SteeredMoreTrait)} | {F(r.SteeredWinRate)} |\n");
        var directional = rows.Where(r => r.SteeredWinRate is not null && r.Pairs > 0).ToList();
        if (directional.Count > 0)
            sb.Append($"\noverall steered win rate (levels away from the middle, pairs weighted): {F(directional.Sum(r => r.SteeredWinRate!.Value * r.Pairs) / directional.Sum(r => r.Pairs))}\n");
        return sb.ToString();
    }

    public static void Plot(string path, string trait, IReadOnlyList<BaselineRow> rows)
    {
        double[] xs = rows.Select(r => (double)r.Level.Level).ToArray();
        var plot = new Plot();
        foreach (var (label, ys, dashed) in new[] { ("prompted", rows.Select(r => r.Prompted).ToArray(), true), ("steered", rows.Select(r => r.Steered).ToArray(), false) })
        {
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = label;
            line.LineWidth = 2;
            line.MarkerSize = 8;
            if (dashed) line.LinePattern = LinePattern.Dashed;
        }
        plot.Axes.SetLimitsY(-2, 102);
        plot.Title($"{trait}: trait score by level, prompted vs steered");
        plot.XLabel("level (steered: the matched multiplier)");
        plot.YLabel($"{trait} score (0-100)");
        plot.ShowLegend(Alignment.UpperLeft);
        plot.SavePng(path, 800, 500);
    }
}
