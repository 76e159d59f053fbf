using ScottPlot;

namespace SteerEngine.Experiments.Report;

/// <summary>One figure of a report: its PNG file name (inside the report folder) and a caption.</summary>
public sealed record Figure(string File, string Caption);

/// <summary>The BiPO study's figures, drawn with ScottPlot; a figure whose data the tree lacks is not drawn.</summary>
public static class StudyPlots
{
    const int Width = 900, Height = 560;

    public static List<Figure> DrawAll(StudyData data, StudyAnalysis analysis, string outDir)
    {
        var figures = new List<Figure>();
        var tasks = data.Tasks.OrderBy(t => t == analysis.TraitTask ? 0 : t == analysis.CoherenceTask ? 1 : 2).ToList();
        foreach (string task in tasks)
            figures.Add(ScoreVsMultiplier(analysis, task, outDir));
        foreach (string task in tasks)
            figures.Add(Heatmap(analysis, task, outDir));
        if (analysis.TradeOff.Count > 0) figures.Add(TraitVsCoherence(analysis, outDir));
        foreach (string task in tasks)
            figures.Add(Distribution(data, task, outDir));
        if (data.Losses.Count > 0) figures.Add(LossCurves(data, outDir));
        if (data.Perplexities.Count > 0) figures.Add(PerplexityByMultiplier(data, outDir));
        if (data.Pairwise.Count > 0) figures.Add(WinRates(data, outDir));
        return figures;
    }

    /// <summary>Mean score against the multiplier, one line per candidate, with 95 % interval bars.</summary>
    static Figure ScoreVsMultiplier(StudyAnalysis analysis, string task, string outDir)
    {
        var plot = new Plot();
        foreach (var g in analysis.Summaries.Where(s => s.Task == task).GroupBy(s => s.Condition.Candidate).OrderBy(g => g.Key))
        {
            var points = g.OrderBy(s => s.Condition.Multiplier).ToList();
            double[] xs = points.Select(p => p.Condition.Multiplier).ToArray();
            double[] ys = points.Select(p => p.Score.Mean).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = g.Key.Label;
            line.LineWidth = 2;
            line.MarkerSize = 6;
            var bars = plot.Add.ErrorBar(xs, ys, points.Select(p => p.Score.HalfWidth).ToArray());
            bars.Color = line.Color;
        }
        plot.Title($"{task}: mean score vs steering multiplier (95 % intervals)");
        plot.XLabel("steering multiplier");
        plot.YLabel($"{task} score");
        plot.ShowLegend(Alignment.UpperLeft);
        return Save(plot, outDir, $"{Safe(task)}_vs_multiplier.png", $"{task} score against the multiplier, per layer and epoch (mean, 95 % interval)");
    }

    /// <summary>Candidates (layer, epoch) × multipliers, coloured by the task's mean score.</summary>
    static Figure Heatmap(StudyAnalysis analysis, string task, string outDir)
    {
        var cells = analysis.Summaries.Where(s => s.Task == task).ToList();
        var candidates = cells.Select(c => c.Condition.Candidate).Distinct().Order().ToList();
        var multipliers = cells.Select(c => c.Condition.Multiplier).Distinct().Order().ToList();
        var grid = new double[candidates.Count, multipliers.Count];
        for (int r = 0; r < candidates.Count; r++)
            for (int c = 0; c < multipliers.Count; c++)
                grid[r, c] = analysis.Find(new Condition(candidates[r], multipliers[c]), task)?.Mean ?? double.NaN;
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(grid);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.FlipVertically = true;
        plot.Add.ColorBar(heatmap).Label = $"{task} (mean)";
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, multipliers.Count).Select(i => (double)i).ToArray(),
            multipliers.Select(m => m.ToString("0.##")).ToArray());
        plot.Axes.Left.SetTicks(Enumerable.Range(0, candidates.Count).Select(i => (double)i).ToArray(),
            candidates.Select(c => c.Label).ToArray());
        plot.Title($"{task}: candidate × multiplier");
        plot.XLabel("steering multiplier");
        return Save(plot, outDir, $"heatmap_{Safe(task)}.png", $"{task} mean score per candidate (layer, epoch) and multiplier");
    }

    /// <summary>Every condition's mean trait against its mean coherence; the Pareto frontier joined by a line.</summary>
    static Figure TraitVsCoherence(StudyAnalysis analysis, string outDir)
    {
        var plot = new Plot();
        foreach (var g in analysis.TradeOff.GroupBy(p => p.Condition.Candidate).OrderBy(g => g.Key))
        {
            var s = plot.Add.ScatterPoints(g.Select(p => p.Coherence).ToArray(), g.Select(p => p.Trait).ToArray());
            s.LegendText = g.Key.Label;
            s.MarkerSize = 8;
        }
        var frontier = analysis.ParetoSet.OrderBy(p => p.Coherence).ToList();
        var line = plot.Add.Scatter(frontier.Select(p => p.Coherence).ToArray(), frontier.Select(p => p.Trait).ToArray());
        line.LegendText = "Pareto frontier";
        line.Color = Colors.Black;
        line.LinePattern = LinePattern.Dashed;
        line.LineWidth = 2;
        line.MarkerSize = 11;
        line.MarkerShape = MarkerShape.OpenCircle;
        foreach (TradeOffPoint p in frontier)
            plot.Add.Text($"×{p.Condition.Multiplier:0.##}", p.Coherence, p.Trait).LabelFontSize = 11;
        plot.Title($"{analysis.TraitTask} vs {analysis.CoherenceTask} per condition");
        plot.XLabel($"{analysis.CoherenceTask} (mean)");
        plot.YLabel($"{analysis.TraitTask} (mean)");
        plot.ShowLegend(Alignment.LowerLeft);
        return Save(plot, outDir, "trait_vs_coherence.png", "trait against coherence per condition, with the Pareto frontier (labels: multiplier)");
    }

    /// <summary>Histograms of one task's scores at the lowest, middle and highest multiplier (all candidates pooled).</summary>
    static Figure Distribution(StudyData data, string task, string outDir)
    {
        var scores = data.Scores.Where(s => s.Task == task).ToList();
        var multipliers = scores.Select(s => s.Condition.Multiplier).Distinct().Order().ToList();
        var shown = new[] { multipliers[0], multipliers[multipliers.Count / 2], multipliers[^1] }.Distinct().ToList();
        double min = scores.Min(s => s.Score), max = scores.Max(s => s.Score);
        if (max <= min) max = min + 1;
        var plot = new Plot();
        foreach (double m in shown)
        {
            AddHistogram(plot, scores.Where(s => s.Condition.Multiplier == m).Select(s => s.Score), min, max, $"×{m:0.##}");
        }
        plot.Title($"{task}: score distribution at multipliers {string.Join(", ", shown.Select(m => m.ToString("0.##")))}");
        plot.XLabel($"{task} score");
        plot.YLabel("samples");
        plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, outDir, $"{Safe(task)}_distribution.png", $"{task} score distributions (all candidates pooled)");
    }

    /// <summary>BiPO train loss (solid) and held-out loss at +v (dashed) per epoch, one colour per layer.</summary>
    static Figure LossCurves(StudyData data, string outDir)
    {
        var plot = new Plot();
        foreach (var g in data.Losses.GroupBy(l => (l.Vector, l.Layer)).OrderBy(g => g.Key.Vector, StringComparer.Ordinal).ThenBy(g => g.Key.Layer))
        {
            var points = g.OrderBy(l => l.Epoch).ToList();
            double[] epochs = points.Select(p => (double)p.Epoch).ToArray();
            var train = plot.Add.Scatter(epochs, points.Select(p => p.TrainLoss).ToArray());
            train.LegendText = $"{g.Key.Vector} L{g.Key.Layer} train";
            train.LineWidth = 2;
            if (points.All(p => p.TestPositiveLoss is not null))
            {
                var test = plot.Add.Scatter(epochs, points.Select(p => p.TestPositiveLoss!.Value).ToArray());
                test.LegendText = $"{g.Key.Vector} L{g.Key.Layer} test (+v)";
                test.Color = train.Color;
                test.LinePattern = LinePattern.Dashed;
            }
        }
        plot.Title("BiPO loss per layer and epoch");
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.ShowLegend(Alignment.UpperRight);
        return Save(plot, outDir, "bipo_loss.png", "BiPO loss curves per layer: train loss and held-out loss at +v");
    }

    static Figure PerplexityByMultiplier(StudyData data, string outDir)
    {
        var plot = new Plot();
        foreach (var g in data.Perplexities.GroupBy(p => p.Condition.Candidate).OrderBy(g => g.Key))
            AddMeanCurve(plot, g.Select(p => (p.Condition.Multiplier, p.Perplexity)), g.Key.Label);
        return Save(Labelled(plot, "perplexity of the generated text by multiplier", "perplexity (mean over samples)"), outDir,
            "perplexity_vs_multiplier.png", "perplexity of the samples under the steered model, by multiplier");
    }

    static Figure WinRates(StudyData data, string outDir)
    {
        var plot = new Plot();
        foreach (var g in data.Pairwise.GroupBy(p => (p.Task, p.Condition.Candidate)).OrderBy(g => g.Key.Task, StringComparer.Ordinal).ThenBy(g => g.Key.Candidate))
            AddMeanCurve(plot, g.Select(p => (p.Condition.Multiplier, p.Win)), $"{g.Key.Task}: {g.Key.Candidate.Label}");
        plot.Add.HorizontalLine(0.5).LinePattern = LinePattern.Dotted;
        plot.Axes.SetLimitsY(-0.02, 1.02);
        return Save(Labelled(plot, "pairwise win rate of steered over baseline samples", "win rate (ties count ½)"), outDir,
            "pairwise_win_rate.png", "pairwise win rate of the steered sample against the baseline, by multiplier");
    }

    /// <summary>The mean of the values at each multiplier, as one labelled line.</summary>
    static void AddMeanCurve(Plot plot, IEnumerable<(double Multiplier, double Value)> values, string label)
    {
        var points = values.GroupBy(v => v.Multiplier).OrderBy(g => g.Key).Select(g => (X: g.Key, Y: g.Average(v => v.Value))).ToList();
        var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
        line.LegendText = label;
        line.LineWidth = 2;
    }

    static Plot Labelled(Plot plot, string title, string yLabel)
    {
        plot.Title(title);
        plot.XLabel("steering multiplier");
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }

    /// <summary>Counts of <paramref name="values"/> in 20 equal bins over [min, max], as half-transparent bars so several overlay.</summary>
    internal static void AddHistogram(Plot plot, IEnumerable<double> values, double min, double max, string label)
    {
        const int bins = 20;
        double width = (max - min) / bins;
        var counts = new double[bins];
        foreach (double v in values) counts[Math.Clamp((int)((v - min) / width), 0, bins - 1)]++;
        var bars = plot.Add.Bars(Enumerable.Range(0, bins).Select(i => min + (i + 0.5) * width).ToArray(), counts);
        bars.LegendText = label;
        Color color = bars.Bars.First().FillColor.WithAlpha(0.5);
        foreach (var bar in bars.Bars)
        {
            bar.Size = width;
            bar.FillColor = color;
            bar.LineWidth = 0;
        }
    }

    internal static Figure Save(Plot plot, string outDir, string file, string caption)
    {
        plot.SavePng(Path.Combine(outDir, file), Width, Height);
        return new Figure(file, caption);
    }

    internal static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
}
