using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScottPlot;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Experiments.Persona;

/// <summary>Who talks: the local model at one steering multiplier, or an API model (Steering null).</summary>
public sealed record StabilityCondition(string Name, float? Multiplier);

/// <summary>Mean trait score of one condition at each answered turn (the last is the reply to the attack).</summary>
public sealed record StabilityRow(string Condition, IReadOnlyList<double> ByTurn)
{
    public double Before => ByTurn.Take(ByTurn.Count - 1).Where(x => !double.IsNaN(x)).DefaultIfEmpty(double.NaN).Average();
    public double After => ByTurn[^1];
}

/// <summary>
/// <c>steer persona stability</c>: each scenario played as a multi-turn conversation by every condition (the local
/// model steered at each multiplier, turn by turn with all conversations in one batch; or an API model), every
/// assistant turn scored with the trait's eval prompt; stability.md has the score by turn before and after the
/// attack per condition, stability.png the same as lines. The conversations file is reused when present and the
/// judge resumes.
/// </summary>
public static class StabilityStudy
{
    public static IReadOnlyList<StabilityRow> Run(string trait, TraitDefinition traitFile, IReadOnlyList<StabilityScenario> scenarios, IReadOnlyList<StabilityCondition> conditions,
        LanguageModel? lm, SteeringVector? vector, int layer, IJudgeProvider? api, IJudgeProvider judge, int maxNewTokens, float temperature, ulong seed, string outDir, int maxConcurrent)
    {
        Directory.CreateDirectory(outDir);
        string conversations = Path.Combine(outDir, "conversations.jsonl");
        if (!File.Exists(conversations))
        {
            var sb = new StringBuilder();
            foreach (StabilityCondition c in conditions)
            {
                var chats = scenarios.Select(s => new List<ChatTurn> { new("user", s.OpeningUser), new("assistant", s.OpeningAssistant) }).ToList();
                int turns = scenarios[0].UserTurns.Count;
                for (int t = 0; t < turns; t++)
                {
                    for (int k = 0; k < scenarios.Count; k++) chats[k].Add(new ChatTurn("user", scenarios[k].UserTurns[t]));
                    IReadOnlyList<string> answers = c.Multiplier is float m
                        ? ChatAnswerer.Engine(lm!, chats.Select(h => new ChatToAnswer(h.ToList(), m == 0 ? null : new SteeringAdd(layer, vector!.ForBlock(layer), m, SteeringPositions.Response))).ToList(),
                            maxNewTokens, temperature, seed + (ulong)t)
                        : ChatAnswerer.Api(api!, chats.Select(h => new ChatToAnswer(h.ToList())).ToList(), maxNewTokens);
                    for (int k = 0; k < scenarios.Count; k++) chats[k].Add(new ChatTurn("assistant", answers[k]));
                }
                for (int k = 0; k < scenarios.Count; k++)
                    for (int t = 0; t < turns; t++)
                        sb.Append(new JsonObject
                        {
                            ["id"] = $"{c.Name}|{k}|{t + 1}", ["condition"] = c.Name, ["theme"] = scenarios[k].Theme, ["direction"] = scenarios[k].Direction,
                            ["turn"] = t + 1, ["attack"] = t == turns - 1, ["question"] = scenarios[k].UserTurns[t], ["answer"] = chats[k][3 + 2 * t].Content,
                        }.ToJsonString()).Append('\n');
            }
            AtomicFile.WriteAllText(conversations, sb.ToString());
        }

        string judged = Path.Combine(outDir, "conversations_judged.jsonl");
        var plan = new JudgePlan(conversations, new InputFields("answer", "question", "id"), [PersonaGeneration.TraitRubric(traitFile, trait)]);
        JudgeRun.RunAsync(plan.Units, judge, judged, File.Exists(judged), maxConcurrent, Prices.None, new JudgeProgress()).GetAwaiter().GetResult();

        int turnCount = scenarios[0].UserTurns.Count;
        var sums = new Dictionary<(string, int), (double Sum, int N)>();
        foreach (JsonElement r in JudgeRecord.Read(judged))
        {
            if (r.GetProperty("score").ValueKind != JsonValueKind.Number) continue;
            JsonElement f = r.GetProperty("fields");
            var key = (f.GetProperty("condition").GetString()!, f.GetProperty("turn").GetInt32());
            var (s, n) = sums.GetValueOrDefault(key);
            sums[key] = (s + r.GetProperty("score").GetDouble(), n + 1);
        }
        var rows = conditions.Select(c => new StabilityRow(c.Name, Enumerable.Range(1, turnCount)
            .Select(t => sums.TryGetValue((c.Name, t), out var v) ? v.Sum / v.N : double.NaN).ToList())).ToList();
        AtomicFile.WriteAllText(Path.Combine(outDir, "stability.md"), Markdown(trait, scenarios.Count, rows));
        Plot(Path.Combine(outDir, "stability.png"), trait, rows);
        return rows;
    }

    static string Markdown(string trait, int scenarios, IReadOnlyList<StabilityRow> rows)
    {
        string F(double x) => double.IsNaN(x) ? "–" : x.ToString("0.00", CultureInfo.InvariantCulture);
        int turns = rows[0].ByTurn.Count;
        var sb = new StringBuilder($"# persona stability: {trait}\n\n{scenarios} scenarios; mean {trait} score (0-100) of each assistant turn; turn {turns} answers the attack\n\n");
        sb.Append("| condition | ").Append(string.Join(" | ", Enumerable.Range(1, turns).Select(t => t == turns ? $"turn {t} (attack)" : $"turn {t}")))
          .Append(" | before | after | change |\n|---|").Append(string.Concat(Enumerable.Repeat("---|", turns + 3))).Append('\n');
        foreach (StabilityRow r in rows)
            sb.Append($"| {r.Condition} | {string.Join(" | ", r.ByTurn.Select(F))} | {F(r.Before)} | {F(r.After)} | {F(r.After - r.Before)} |\n");
        return sb.ToString();
    }

    static void Plot(string path, string trait, IReadOnlyList<StabilityRow> rows)
    {
        var plot = new Plot();
        int turns = rows[0].ByTurn.Count;
        foreach (StabilityRow r in rows)
        {
            var line = plot.Add.Scatter(Enumerable.Range(1, turns).Select(t => (double)t).ToArray(), r.ByTurn.ToArray());
            line.LegendText = r.Condition;
            line.LineWidth = 2;
            line.MarkerSize = 8;
        }
        var attack = plot.Add.VerticalLine(turns - 0.5);
        attack.LinePattern = LinePattern.Dashed;
        attack.Text = "attack";
        plot.Axes.SetLimitsY(-2, 102);
        plot.Title($"{trait}: score by turn, before and after the attack");
        plot.XLabel("assistant turn");
        plot.YLabel($"{trait} score (0-100)");
        plot.ShowLegend(Alignment.LowerLeft);
        plot.SavePng(path, 800, 500);
    }
}
