using System.Text.Json;
using SteerEngine.Experiments;
using SteerEngine.Generation.Jobs;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>examples/demo-experiment.yaml end to end: BiPO at two layers × 2 epochs, 9 multipliers, judged by the local judge model, reported.</summary>
[NonParallelizable]
public class DemoExperimentTests
{
    [Test]
    public void Demo_experiment_completes_offline_and_its_trait_curve_rises_with_the_multiplier()
    {
        if (!File.Exists(Repo.Path("models", "judge", "model.safetensors")))
            Assert.Ignore("the judge model's weights are not in models/judge (models/judge/train.sh makes them)");
        Experiment experiment = Experiment.Load(Repo.Path("examples", "demo-experiment.yaml"));
        string root = TestModels.TempDir("demo-experiment");
        RunSummary s = new ExperimentRunner(experiment, root).Run("all", Shard.All);
        Assert.That(s.Ok && s.Finished == 2 + 4 + 8, Is.True, string.Join("; ", s.Failed.Concat(s.Blocked)));

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "report", "summary.json")));
        var conditions = summary.RootElement.GetProperty("conditions").EnumerateArray().ToList();
        foreach (var candidate in conditions.GroupBy(c => (c.GetProperty("layer").GetInt32(), c.GetProperty("epoch").GetInt32())))
        {
            var curve = candidate.OrderBy(c => c.GetProperty("multiplier").GetDouble())
                .Select(c => c.GetProperty("scores").GetProperty("happy").GetProperty("mean").GetDouble()).ToList();
            Assert.That(curve, Has.Count.EqualTo(9));
            Assert.That(curve[^1], Is.GreaterThan(curve[0] + 40), $"L{candidate.Key.Item1} ep{candidate.Key.Item2}: {string.Join(", ", curve.Select(v => v.ToString("0")))}");
            Assert.That(Spearman(curve), Is.GreaterThanOrEqualTo(0.8));
        }
        Assert.That(File.Exists(Path.Combine(root, "report", "index.html")));
    }

    /// <summary>Rank correlation of the values with their position (no ties expected in the ranks of positions).</summary>
    static double Spearman(IReadOnlyList<double> ys)
    {
        int n = ys.Count;
        var order = ys.Select((y, i) => (y, i)).OrderBy(p => p.y).ToList();
        var rank = new double[n];
        for (int k = 0; k < n;)
        {
            int j = k;
            while (j + 1 < n && order[j + 1].y == order[k].y) j++;
            for (int m = k; m <= j; m++) rank[order[m].i] = (k + j) / 2.0;
            k = j + 1;
        }
        double mean = (n - 1) / 2.0, sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++) { sxy += (i - mean) * (rank[i] - mean); sxx += (i - mean) * (i - mean); syy += (rank[i] - mean) * (rank[i] - mean); }
        return sxy / Math.Sqrt(sxx * syy);
    }
}
