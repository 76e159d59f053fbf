using SteerEngine.Cli.Demo;
using SteerEngine.Model;

namespace SteerEngine.Tests.Demo;

/// <summary>
/// The behaviour every trait vector of the demo model is held to: over a steered sweep the measured
/// trait rate rises monotonically with the multiplier (Spearman ρ ≥ 0.9), spans most of its range,
/// and the output stays grammatical near multiplier 0.
/// </summary>
public static class SteeringSweep
{
    /// <summary>Coherence floor for |multiplier| ≤ 1; sampled at temperature 1 the unsteered model writes about 85 % well-formed sentences.</summary>
    public const double CoherenceFloor = 0.75;

    /// <summary>
    /// Makes a vector from the trait's contrastive pairs at the middle block (as <c>steer demo</c> does), checks it
    /// is not the zero vector BiPO starts from, runs the sweep (4 prompts × <paramref name="samples"/> answers of
    /// ≤ 40 tokens per multiplier) and asserts the behaviour.
    /// </summary>
    public static IReadOnlyList<SweepPoint> AssertMonotone(string trait, Func<LanguageModel, IReadOnlyList<ContrastPair>, int, float[]> makeVector,
        float[] multipliers, int samples)
    {
        DemoFiles.RequireModel();
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir);
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        int layer = (lm.Config.NumLayers - 1) / 2;
        float[] vector = makeVector(lm, TraitVector.ReadPairs(Path.Combine(DemoFiles.ModelDir, $"{trait}_pairs.jsonl")), layer);
        double norm = Math.Sqrt(vector.Sum(x => (double)x * x));
        TestContext.Out.WriteLine($"{trait} vector at block {layer}: norm {norm:0.00}");
        Assert.That(norm, Is.GreaterThan(1), "the vector has moved away from zero");

        var points = TraitSweep.Run(lm, language, trait, vector, layer, multipliers, TraitSweep.DefaultPrompts, samples, maxNewTokens: 40);
        double[] rates = points.Select(p => p.TraitRate).ToArray();
        string report = "multiplier: trait rate/coherence " + string.Join(", ", points.Select(p => $"{p.Multiplier}: {p.TraitRate:0.00}/{p.Coherence:0.00}"));
        TestContext.Out.WriteLine(report);
        Assert.That(SpearmanRho(multipliers.Select(m => (double)m).ToArray(), rates), Is.GreaterThanOrEqualTo(0.9), report);
        Assert.That(rates[^1] - rates[0], Is.GreaterThan(0.5), "the sweep spans most of the range: " + report);
        foreach (SweepPoint p in points.Where(p => Math.Abs(p.Multiplier) <= 1))
            Assert.That(p.Coherence, Is.GreaterThanOrEqualTo(CoherenceFloor), report);
        return points;
    }

    /// <summary>Pearson correlation of the ranks (ties get their average rank); NaN when either series is constant.</summary>
    public static double SpearmanRho(double[] x, double[] y)
    {
        double[] rx = Ranks(x), ry = Ranks(y);
        double mx = rx.Average(), my = ry.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Length; i++)
        {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        return sxy / Math.Sqrt(sxx * syy);
    }

    static double[] Ranks(double[] v)
    {
        var order = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
        var ranks = new double[v.Length];
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && v[order[end + 1]] == v[order[start]]) end++;
            for (int k = start; k <= end; k++) ranks[order[k]] = (start + end) / 2.0 + 1;
            start = end + 1;
        }
        return ranks;
    }
}

public class SteeringSweepTests
{
    [Test]
    public void Spearman_rho_of_a_monotone_a_reversed_and_a_constant_series()
    {
        Assert.That(SteeringSweep.SpearmanRho([1, 2, 3, 4], [0.1, 0.2, 0.2, 0.9]), Is.GreaterThan(0.9));
        Assert.That(SteeringSweep.SpearmanRho([1, 2, 3, 4], [4, 3, 2, 1]), Is.EqualTo(-1).Within(1e-12));
        // What a zero vector gives (every multiplier the same outputs): no ρ, which fails ρ ≥ 0.9.
        Assert.That(SteeringSweep.SpearmanRho([1, 2, 3, 4], [0.5, 0.5, 0.5, 0.5]), Is.NaN);
    }
}
