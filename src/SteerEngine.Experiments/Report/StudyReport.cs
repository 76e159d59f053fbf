using System.Text.Json;

namespace SteerEngine.Experiments.Report;

/// <summary>What <see cref="StudyReport.Write"/> produced.</summary>
public sealed record ReportResult(string Layout, IReadOnlyList<Figure> Figures, IReadOnlyList<ReportTable> Tables, IReadOnlyList<string> Notes, string IndexPath);

/// <summary>
/// <c>steer report</c>: turns a study tree into figures (PNG), tables (CSV), summary.json, summary.csv and an
/// index.html that shows them all with the study's config and needs nothing but the folder to be read. A BiPO
/// study tree (vector/, vector_evals/) and an emergent-misalignment tree (generations_*.json, judged_*.csv) are
/// recognised by their files.
/// </summary>
public static class StudyReport
{
    public static ReportResult Write(string root, string outDir, RankingOptions options)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: study folder not found");
        Directory.CreateDirectory(outDir);
        if (EmergentMisalignmentReport.Recognizes(root)) return EmergentMisalignmentReport.Write(root, outDir);
        if (!BipoStudyReader.Recognizes(root))
            throw new InvalidDataException($"{root}: neither a BiPO study tree (vector/, vector_evals/) nor an emergent-misalignment tree (generations_*.json, judged_*.csv)");

        StudyData data = BipoStudyReader.Read(root);
        StudyAnalysis analysis = StudyAnalysis.Of(data, options);
        var figures = data.Scores.Count + data.Losses.Count + data.Perplexities.Count + data.Pairwise.Count == 0 ? [] : StudyPlots.DrawAll(data, analysis, outDir);
        var tables = Tables(data, analysis);
        foreach (ReportTable t in tables) t.WriteCsv(outDir);
        WriteSummary(data, analysis, figures, outDir);
        string index = Path.Combine(outDir, "index.html");
        AtomicFile.WriteAllText(index, ReportPage.Html("Steering study report", Path.GetFullPath(root), Headline(analysis), figures, tables, data.ConfigJson, data.Notes));
        return new ReportResult("bipo", figures, tables, data.Notes, index);
    }

    static string Headline(StudyAnalysis a)
    {
        if (a.Ranking.Count == 0) return "No judged scores yet: nothing to rank.";
        RankedCandidate best = a.Ranking[0];
        string floor = a.CoherenceTask is null ? "no coherence floor" : $"{a.CoherenceTask} ≥ {a.Options.Floor:0.##}";
        return $"Best candidate by area under the {a.TraitTask} curve ({floor}): {best.Candidate.Label}, area {best.Area:0.###} " +
               $"({best.Coherent} of {best.Multipliers} multipliers coherent).";
    }

    static List<ReportTable> Tables(StudyData data, StudyAnalysis a)
    {
        var tables = new List<ReportTable>
        {
            new("means.csv", "mean score per condition and task, with 95 % intervals",
                ["model", "layer", "epoch", "multiplier", "task", "n", "mean", "sd", "ci_low", "ci_high"],
                a.Summaries.Select(s => Row(s.Condition, s.Task, s.Score.N.ToString(), N(s.Score.Mean), N(s.Score.StandardDeviation), N(s.Score.Low), N(s.Score.High))).ToList()),
            new("ranking.csv", $"candidates ranked by area under the {a.TraitTask} curve, conditions with {a.CoherenceTask ?? "coherence"} < {a.Options.Floor:0.##} counting 0 " +
                               $"(weights: trait {a.Options.TraitWeight:0.##}, coherence {a.Options.CoherenceWeight:0.##})",
                ["rank", "model", "layer", "epoch", "area", "coherent_multipliers", "multipliers"],
                a.Ranking.Select(r => (IReadOnlyList<string>)[r.Rank.ToString(), r.Candidate.Model, r.Candidate.Layer.ToString(), r.Candidate.Epoch.ToString(),
                    N(r.Area), r.Coherent.ToString(), r.Multipliers.ToString()]).ToList()),
            new("sensitivity.csv", "the ranking at other coherence floors: each candidate's rank (area)",
                ["candidate", .. a.Sensitivity.Select(s => $"floor {s.Floor:0.##}")],
                a.Ranking.Select(r => r.Candidate).Order().Select(c => (IReadOnlyList<string>)[c.Label, .. a.Sensitivity.Select(s =>
                    s.Ranking.First(x => x.Candidate == c) is var x ? $"{x.Rank} ({N(x.Area)})" : "")]).ToList()),
            new("pareto.csv", $"conditions on the Pareto frontier of {a.TraitTask} and {a.CoherenceTask} (no condition is better on both)",
                ["model", "layer", "epoch", "multiplier", "trait", "coherence"],
                a.ParetoSet.OrderByDescending(p => p.Coherence).Select(p => (IReadOnlyList<string>)[p.Condition.Candidate.Model, p.Condition.Candidate.Layer.ToString(),
                    p.Condition.Candidate.Epoch.ToString(), N(p.Condition.Multiplier), N(p.Trait), N(p.Coherence)]).ToList()),
        };
        if (data.Losses.Count > 0)
            tables.Add(new("bipo_loss.csv", "BiPO losses per layer and epoch", ["vector", "layer", "epoch", "train_loss", "test_pos_loss", "test_neg_loss"],
                data.Losses.Select(l => (IReadOnlyList<string>)[l.Vector, l.Layer.ToString(), l.Epoch.ToString(), N(l.TrainLoss),
                    l.TestPositiveLoss is double p ? N(p) : "", l.TestNegativeLoss is double q ? N(q) : ""]).ToList()));
        if (data.Pairwise.Count > 0)
            tables.Add(new("win_rates.csv", "pairwise win rate of steered over baseline samples", ["model", "layer", "epoch", "multiplier", "task", "n", "win_rate"],
                data.Pairwise.GroupBy(p => (p.Condition, p.Task)).OrderBy(g => g.Key.Task, StringComparer.Ordinal).ThenBy(g => g.Key.Condition.Candidate).ThenBy(g => g.Key.Condition.Multiplier)
                    .Select(g => Row(g.Key.Condition, g.Key.Task, g.Count().ToString(), N(g.Average(p => p.Win)))).ToList()));
        return tables;
    }

    static IReadOnlyList<string> Row(Condition c, string task, params string[] rest) =>
        [c.Candidate.Model, c.Candidate.Layer.ToString(), c.Candidate.Epoch.ToString(), N(c.Multiplier), task, .. rest];

    static string N(double v) => ReportTable.Number(v);

    /// <summary>summary.json (everything the tables hold, as numbers) and summary.csv (one row per condition, every task's mean and interval).</summary>
    static void WriteSummary(StudyData data, StudyAnalysis a, IReadOnlyList<Figure> figures, string outDir)
    {
        var tasks = data.Tasks;
        var conditions = a.Summaries.Select(s => s.Condition).Distinct().OrderBy(c => c.Candidate).ThenBy(c => c.Multiplier).ToList();
        var frontier = a.ParetoSet.Select(p => p.Condition).ToHashSet();
        var summary = new
        {
            layout = "bipo",
            trait_task = a.TraitTask,
            coherence_task = a.CoherenceTask,
            coherence_floor = a.Options.Floor,
            trait_weight = a.Options.TraitWeight,
            coherence_weight = a.Options.CoherenceWeight,
            conditions = conditions.Select(c => new
            {
                model = c.Candidate.Model, layer = c.Candidate.Layer, epoch = c.Candidate.Epoch, multiplier = c.Multiplier,
                scores = tasks.Where(t => a.Find(c, t) is not null).ToDictionary(t => t, t => a.Find(c, t) is { } m
                    ? new { n = m.N, mean = m.Mean, sd = m.StandardDeviation, ci_low = m.Low, ci_high = m.High } : null),
                pareto = frontier.Contains(c),
            }),
            ranking = a.Ranking.Select(r => new { rank = r.Rank, model = r.Candidate.Model, layer = r.Candidate.Layer, epoch = r.Candidate.Epoch, area = r.Area, coherent_multipliers = r.Coherent, multipliers = r.Multipliers }),
            sensitivity = a.Sensitivity.Select(s => new { floor = s.Floor, ranking = s.Ranking.Select(r => new { rank = r.Rank, model = r.Candidate.Model, layer = r.Candidate.Layer, epoch = r.Candidate.Epoch, area = r.Area }) }),
            pareto = a.ParetoSet.Select(p => new { model = p.Condition.Candidate.Model, layer = p.Condition.Candidate.Layer, epoch = p.Condition.Candidate.Epoch, multiplier = p.Condition.Multiplier, trait = p.Trait, coherence = p.Coherence }),
            figures = figures.Select(f => f.File),
            notes = data.Notes,
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));

        var columns = new List<string> { "model", "layer", "epoch", "multiplier" };
        foreach (string t in tasks) columns.AddRange([$"{t}_n", $"{t}_mean", $"{t}_ci_low", $"{t}_ci_high"]);
        columns.Add("pareto");
        var rows = conditions.Select(c =>
        {
            var row = new List<string> { c.Candidate.Model, c.Candidate.Layer.ToString(), c.Candidate.Epoch.ToString(), N(c.Multiplier) };
            foreach (string t in tasks)
                row.AddRange(a.Find(c, t) is { } m ? [m.N.ToString(), N(m.Mean), N(m.Low), N(m.High)] : ["", "", "", ""]);
            row.Add(frontier.Contains(c) ? "1" : "0");
            return (IReadOnlyList<string>)row;
        }).ToList();
        new ReportTable("summary.csv", "", columns, rows).WriteCsv(outDir);
    }
}
