using ScottPlot;

namespace SteerEngine.Cli.Demo;

/// <summary>The sweep as a PNG: trait rate and coherence against the multiplier.</summary>
public static class SweepPlot
{
    public static void Save(string path, IReadOnlyList<SweepPoint> points, string traitLabel, string title)
    {
        double[] xs = points.Select(p => (double)p.Multiplier).ToArray();
        var plot = new Plot();
        var rate = plot.Add.Scatter(xs, points.Select(p => p.TraitRate).ToArray());
        rate.LegendText = traitLabel;
        rate.LineWidth = 2;
        rate.MarkerSize = 8;
        var coherence = plot.Add.Scatter(xs, points.Select(p => p.Coherence).ToArray());
        coherence.LegendText = "coherence (well-formed sentences)";
        coherence.LineWidth = 2;
        coherence.MarkerSize = 8;
        coherence.LinePattern = LinePattern.Dashed;
        plot.Axes.SetLimitsY(-0.02, 1.02);
        plot.Title(title);
        plot.XLabel("steering multiplier");
        plot.YLabel("rate");
        plot.ShowLegend(Alignment.LowerRight);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        plot.SavePng(path, 800, 500);
    }
}
