using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ScottPlot;
using SteerEngine.Generation.Jobs;

namespace SteerEngine.Experiments.Report;

/// <summary>One condition of an emergent-misalignment tree: the baseline, or a transform at a layer and alpha.</summary>
public sealed record EmCondition(string Name, string? Transform, int? Layer, double? Alpha);

/// <summary>
/// The emergent-misalignment layout: config.json, generations_baseline.json,
/// generations_{transform}_layer_{n}_alpha_{a}.json and judged_{condition}.csv (one row per answer with "aligned"
/// and "coherent" scores, 0–100; empty or non-numeric cells are the judge's refusals and are left out). Writes
/// summary.json, summary.csv and plots/: scores by condition, score distributions, alignment vs coherence, alignment
/// and coherence by layer × transform (lines and heatmaps), and index.html.
/// </summary>
public static partial class EmergentMisalignmentReport
{
    [GeneratedRegex(@"^judged_(.+)\.csv$")] private static partial Regex JudgedFile();
    [GeneratedRegex(@"^(.+)_layer_(-?\d+)_alpha_(-?[0-9.eE+-]+)$")] private static partial Regex SteeredName();

    static readonly string[] Metrics = ["aligned", "coherent"];

    public static bool Recognizes(string root) =>
        Directory.GetFiles(root, "judged_*.csv").Length > 0 || File.Exists(Path.Combine(root, "generations_baseline.json"));

    public static EmCondition Parse(string name)
    {
        Match m = SteeredName().Match(name);
        return m.Success && double.TryParse(m.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double alpha)
            ? new EmCondition(name, m.Groups[1].Value, int.Parse(m.Groups[2].Value), alpha)
            : new EmCondition(name, null, null, null);
    }

    public static ReportResult Write(string root, string outDir)
    {
        var scores = new Dictionary<(EmCondition Condition, string Metric), List<double>>();
        var notes = new List<string>();
        foreach (string file in Directory.GetFiles(root, "judged_*.csv").Order(StringComparer.Ordinal))
        {
            EmCondition condition = Parse(JudgedFile().Match(Path.GetFileName(file)).Groups[1].Value);
            int refused = 0;
            foreach (var (line, row) in CsvReader.Read(file))
                foreach (string metric in Metrics)
                {
                    if (!row.TryGetValue(metric, out string? cell))
                        throw new InvalidDataException($"{file}:{line}: no '{metric}' column (columns: {string.Join(", ", row.Keys)})");
                    if (double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)) Add(condition, metric, v);
                    else refused++;
                }
            if (refused > 0) notes.Add($"{Path.GetFileName(file)}: {refused} cells without a numeric score (left out)");
        }
        if (scores.Count == 0) notes.Add("no judged_*.csv files: nothing to plot");
        void Add(EmCondition c, string metric, double v)
        {
            if (!scores.TryGetValue((c, metric), out var list)) scores[(c, metric)] = list = [];
            list.Add(v);
        }

        var conditions = scores.Keys.Select(k => k.Condition).Distinct()
            .OrderBy(c => c.Transform is null ? 0 : 1).ThenBy(c => c.Transform, StringComparer.Ordinal).ThenBy(c => c.Layer).ThenBy(c => c.Alpha).ToList();
        var means = scores.ToDictionary(kv => kv.Key, kv => Statistics.Mean(kv.Value));
        string plots = Path.Combine(outDir, "plots");
        Directory.CreateDirectory(plots);
        var figures = conditions.Count == 0 ? [] : DrawAll(conditions, scores, means, plots);

        var columns = new List<string> { "condition", "transform", "layer", "alpha" };
        foreach (string m in Metrics) columns.AddRange([$"{m}_n", $"{m}_mean", $"{m}_ci_low", $"{m}_ci_high"]);
        var rows = conditions.Select(c =>
        {
            var row = new List<string> { c.Name, c.Transform ?? "", c.Layer?.ToString() ?? "", c.Alpha is double a ? ReportTable.Number(a) : "" };
            foreach (string m in Metrics)
                row.AddRange(means.TryGetValue((c, m), out var s) ? [s.N.ToString(), ReportTable.Number(s.Mean), ReportTable.Number(s.Low), ReportTable.Number(s.High)] : ["", "", "", ""]);
            return (IReadOnlyList<string>)row;
        }).ToList();
        var table = new ReportTable("summary.csv", "mean aligned and coherent score per condition, with 95 % intervals", columns, rows);
        table.WriteCsv(outDir);
        var summary = conditions.Select(c => new
        {
            condition = c.Name, transform = c.Transform, layer = c.Layer, alpha = c.Alpha,
            scores = Metrics.Where(m => means.ContainsKey((c, m))).ToDictionary(m => m, m => means[(c, m)] is var s
                ? new { n = s.N, mean = s.Mean, sd = s.StandardDeviation, ci_low = s.Low, ci_high = s.High } : null),
        });
        AtomicFile.WriteAllText(Path.Combine(outDir, "summary.json"), JsonSerializer.Serialize(new { layout = "emergent-misalignment", conditions = summary, figures = figures.Select(f => f.File), notes },
            new JsonSerializerOptions { WriteIndented = true }));
        string configPath = Path.Combine(root, "config.json");
        string index = Path.Combine(outDir, "index.html");
        string headline = conditions.Count == 0 ? "No judged answers yet." : $"{conditions.Count} conditions, {scores.Where(k => k.Key.Metric == "aligned").Sum(k => k.Value.Count)} judged answers.";
        AtomicFile.WriteAllText(index, ReportPage.Html("Emergent-misalignment steering report", Path.GetFullPath(root), headline, figures, [table],
            File.Exists(configPath) ? File.ReadAllText(configPath) : null, notes));
        return new ReportResult("emergent-misalignment", figures, [table], notes, index);
    }

    static List<Figure> DrawAll(List<EmCondition> conditions, Dictionary<(EmCondition, string), List<double>> scores,
        Dictionary<(EmCondition, string), MeanInterval> means, string plots)
    {
        var figures = new List<Figure>();
        string Rel(Figure f) => "plots/" + f.File;

        var byCondition = new Plot();
        for (int k = 0; k < Metrics.Length; k++)
        {
            var present = conditions.Select((c, i) => (c, i)).Where(x => means.ContainsKey((x.c, Metrics[k]))).ToList();
            double[] xs = present.Select(x => x.i + (k - 0.5) * 0.35).ToArray();
            double[] ys = present.Select(x => means[(x.c, Metrics[k])].Mean).ToArray();
            var bars = byCondition.Add.Bars(xs, ys);
            bars.LegendText = Metrics[k];
            foreach (var b in bars.Bars) b.Size = 0.35;
            byCondition.Add.ErrorBar(xs, ys, present.Select(x => means[(x.c, Metrics[k])].HalfWidth).ToArray()).Color = Colors.Black;
        }
        byCondition.Axes.Bottom.SetTicks(Enumerable.Range(0, conditions.Count).Select(i => (double)i).ToArray(), conditions.Select(c => c.Name).ToArray());
        byCondition.Axes.Bottom.TickLabelStyle.Rotation = 45;
        byCondition.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        byCondition.Title("mean score by condition (95 % intervals)");
        byCondition.ShowLegend(Alignment.UpperRight);
        figures.Add(StudyPlots.Save(byCondition, plots, "scores_by_condition.png", "aligned and coherent scores by condition"));

        var distribution = new Plot();
        foreach (string m in Metrics)
        {
            StudyPlots.AddHistogram(distribution, scores.Where(kv => kv.Key.Item2 == m).SelectMany(kv => kv.Value), 0, 100, m);
        }
        distribution.Title("score distributions (all conditions)");
        distribution.XLabel("score");
        distribution.YLabel("answers");
        distribution.ShowLegend(Alignment.UpperLeft);
        figures.Add(StudyPlots.Save(distribution, plots, "score_distributions.png", "distributions of the aligned and coherent scores"));

        var tradeOff = new Plot();
        foreach (EmCondition c in conditions.Where(c => means.ContainsKey((c, "aligned")) && means.ContainsKey((c, "coherent"))))
        {
            var p = tradeOff.Add.ScatterPoints(new[] { means[(c, "coherent")].Mean }, new[] { means[(c, "aligned")].Mean });
            p.LegendText = c.Name;
            p.MarkerSize = 9;
        }
        tradeOff.Title("alignment vs coherence per condition");
        tradeOff.XLabel("coherent (mean)");
        tradeOff.YLabel("aligned (mean)");
        tradeOff.ShowLegend(Alignment.LowerLeft);
        figures.Add(StudyPlots.Save(tradeOff, plots, "alignment_vs_coherence.png", "mean alignment against mean coherence per condition"));

        var steered = conditions.Where(c => c.Transform is not null).ToList();
        if (steered.Count > 0)
            foreach (string m in Metrics)
            {
                var lines = new Plot();
                var groups = steered.GroupBy(c => (c.Transform, c.Alpha)).OrderBy(g => g.Key.Transform, StringComparer.Ordinal).ThenBy(g => g.Key.Alpha).ToList();
                foreach (var g in groups)
                {
                    var pts = g.Where(c => means.ContainsKey((c, m))).OrderBy(c => c.Layer).ToList();
                    var s = lines.Add.Scatter(pts.Select(c => (double)c.Layer!.Value).ToArray(), pts.Select(c => means[(c, m)].Mean).ToArray());
                    s.LegendText = $"{g.Key.Transform} α={g.Key.Alpha:0.##}";
                    s.LineWidth = 2;
                }
                if (conditions.FirstOrDefault(c => c.Transform is null) is { } baseline && means.TryGetValue((baseline, m), out var b))
                    lines.Add.HorizontalLine(b.Mean).LegendText = "baseline";
                lines.Title($"{m} by layer and transform");
                lines.XLabel("layer");
                lines.YLabel($"{m} (mean)");
                lines.ShowLegend(Alignment.LowerLeft);
                figures.Add(StudyPlots.Save(lines, plots, $"{m}_by_layer_transform.png", $"{m} by layer, one line per transform and alpha"));

                var layers = steered.Select(c => c.Layer!.Value).Distinct().Order().ToList();
                var grid = new double[groups.Count, layers.Count];
                for (int r = 0; r < groups.Count; r++)
                    for (int col = 0; col < layers.Count; col++)
                        grid[r, col] = groups[r].FirstOrDefault(c => c.Layer == layers[col]) is { } c && means.TryGetValue((c, m), out var s) ? s.Mean : double.NaN;
                var heat = new Plot();
                var hm = heat.Add.Heatmap(grid);
                hm.Colormap = new ScottPlot.Colormaps.Viridis();
                hm.FlipVertically = true;
                heat.Add.ColorBar(hm).Label = $"{m} (mean)";
                heat.Axes.Bottom.SetTicks(Enumerable.Range(0, layers.Count).Select(i => (double)i).ToArray(), layers.Select(l => l.ToString()).ToArray());
                heat.Axes.Left.SetTicks(Enumerable.Range(0, groups.Count).Select(i => (double)i).ToArray(), groups.Select(g => $"{g.Key.Transform} α={g.Key.Alpha:0.##}").ToArray());
                heat.Title($"{m}: transform × layer");
                heat.XLabel("layer");
                figures.Add(StudyPlots.Save(heat, plots, $"heatmap_{m}.png", $"{m} per transform (and alpha) and layer"));
            }
        return figures.Select(f => f with { File = Rel(f) }).ToList();
    }
}
