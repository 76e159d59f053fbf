using System.Text.Json;
using SkiaSharp;
using SteerEngine.Experiments.Report;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

public class StudyReportTests
{
    static readonly string[] BipoFigures =
    [
        "happy_vs_multiplier.png", "coherence_vs_multiplier.png", "heatmap_happy.png", "heatmap_coherence.png", "trait_vs_coherence.png",
        "happy_distribution.png", "coherence_distribution.png", "bipo_loss.png", "perplexity_vs_multiplier.png", "pairwise_win_rate.png",
    ];

    static (string Root, string Out, ReportResult Result) Report(RankingOptions? options = null)
    {
        string root = TestModels.TempDir("study");
        StudyTreeBuilder.Write(root);
        string outDir = Path.Combine(root, "report");
        return (root, outDir, StudyReport.Write(root, outDir, options ?? new RankingOptions { Trait = "happy" }));
    }

    [Test]
    public void Means_and_95_percent_intervals_match_the_known_scores()
    {
        var (_, outDir, _) = Report();
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var conditions = summary.RootElement.GetProperty("conditions").EnumerateArray().ToList();
        Assert.That(conditions, Has.Count.EqualTo(12));
        // Four trait scores mean ± (3, 1): s = √(20/3); t(0.975, 3) = 3.182; half-width = 3.182·s/2.
        double traitHalf = 3.182 * Math.Sqrt(20.0 / 3) / 2, coherenceHalf = 3.182 * Math.Sqrt(10.0 / 3) / 2;
        foreach (var ((layer, epoch), (trait, coherence)) in StudyTreeBuilder.Means)
            for (int k = 0; k < 3; k++)
            {
                JsonElement c = conditions.Single(x => x.GetProperty("layer").GetInt32() == layer && x.GetProperty("epoch").GetInt32() == epoch
                                                       && x.GetProperty("multiplier").GetDouble() == StudyTreeBuilder.Multipliers[k]);
                JsonElement happy = c.GetProperty("scores").GetProperty("happy"), coh = c.GetProperty("scores").GetProperty("coherence");
                Assert.That(happy.GetProperty("n").GetInt32(), Is.EqualTo(4));
                Assert.That(happy.GetProperty("mean").GetDouble(), Is.EqualTo(trait[k]).Within(1e-9));
                Assert.That(happy.GetProperty("ci_low").GetDouble(), Is.EqualTo(trait[k] - traitHalf).Within(1e-9));
                Assert.That(happy.GetProperty("ci_high").GetDouble(), Is.EqualTo(trait[k] + traitHalf).Within(1e-9));
                Assert.That(coh.GetProperty("mean").GetDouble(), Is.EqualTo(coherence[k]).Within(1e-9));
                Assert.That(coh.GetProperty("ci_high").GetDouble(), Is.EqualTo(coherence[k] + coherenceHalf).Within(1e-9));
            }
        string csv = File.ReadAllText(Path.Combine(outDir, "summary.csv"));
        Assert.That(csv, Does.StartWith("model,layer,epoch,multiplier,coherence_n,coherence_mean,coherence_ci_low,coherence_ci_high,happy_n,happy_mean"));
        Assert.That(csv.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(13));
    }

    [Test]
    public void Candidates_rank_by_area_under_the_trait_curve_within_the_coherence_floor()
    {
        var (_, outDir, _) = Report();
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var ranking = summary.RootElement.GetProperty("ranking").EnumerateArray()
            .Select(r => (r.GetProperty("layer").GetInt32(), r.GetProperty("epoch").GetInt32(), r.GetProperty("area").GetDouble())).ToList();
        // Floor 50: L1ep2 loses ×1 (coherence 40), L2ep2 loses ×0 and ×1. Areas by trapezoids over a span of 2.
        Assert.That(ranking, Is.EqualTo(new[] { (2, 1, 32.5), (1, 1, 30.0), (1, 2, 22.5), (2, 2, 1.25) }));

        var atZero = summary.RootElement.GetProperty("sensitivity").EnumerateArray().Single(s => s.GetProperty("floor").GetDouble() == 0)
            .GetProperty("ranking").EnumerateArray().Select(r => (r.GetProperty("layer").GetInt32(), r.GetProperty("epoch").GetInt32(), r.GetProperty("area").GetDouble()));
        Assert.That(atZero, Is.EqualTo(new[] { (2, 2, 48.75), (1, 2, 42.5), (2, 1, 32.5), (1, 1, 30.0) }));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "sensitivity.csv"))[0], Is.EqualTo("candidate,floor 0,floor 25,floor 50,floor 60,floor 70,floor 80,floor 90"));
    }

    [Test]
    public void Coherence_weight_adds_coherence_to_the_area()
    {
        var (_, outDir, _) = Report(new RankingOptions { Trait = "happy", Floor = 0, TraitWeight = 0, CoherenceWeight = 1, SensitivityFloors = [0] });
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var first = summary.RootElement.GetProperty("ranking")[0];
        // L2 ep1's coherence 95, 90, 85: area (92.5 + 87.5) / 2 = 90.
        Assert.That((first.GetProperty("layer").GetInt32(), first.GetProperty("epoch").GetInt32(), first.GetProperty("area").GetDouble()), Is.EqualTo((2, 1, 90.0)));
    }

    [Test]
    public void Pareto_set_is_the_conditions_no_other_beats_on_both_scores()
    {
        var (_, outDir, _) = Report();
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var pareto = summary.RootElement.GetProperty("pareto").EnumerateArray()
            .Select(p => (p.GetProperty("layer").GetInt32(), p.GetProperty("epoch").GetInt32(), p.GetProperty("multiplier").GetDouble())).OrderBy(p => p).ToList();
        Assert.That(pareto, Is.EqualTo(new[] { (1, 1, 1.0), (1, 2, 1.0), (2, 1, -1.0), (2, 1, 0.0), (2, 1, 1.0), (2, 2, 1.0) }));
    }

    [Test]
    public void Every_figure_exists_and_is_a_drawn_picture()
    {
        var (_, outDir, result) = Report();
        Assert.That(result.Figures.Select(f => f.File), Is.EquivalentTo(BipoFigures));
        foreach (string file in BipoFigures) AssertDrawn(Path.Combine(outDir, file));
        foreach (string table in new[] { "means.csv", "ranking.csv", "sensitivity.csv", "pareto.csv", "bipo_loss.csv", "win_rates.csv" })
            Assert.That(File.Exists(Path.Combine(outDir, table)), table);
        Assert.That(result.Notes, Has.Some.Contains("1 records without a score"));
    }

    [Test]
    public void Emergent_misalignment_tree_gets_its_summary_and_plots()
    {
        string root = TestModels.TempDir("em");
        File.WriteAllText(Path.Combine(root, "config.json"), "{\"model\": \"m\"}");
        File.WriteAllText(Path.Combine(root, "generations_baseline.json"), "[]");
        var rows = new Dictionary<string, (double Aligned, double Coherent)>
        {
            ["baseline"] = (90, 95), ["add_layer_4_alpha_2"] = (70, 85), ["add_layer_8_alpha_2"] = (50, 80),
            ["ablate_layer_4_alpha_1"] = (85, 90), ["ablate_layer_8_alpha_1"] = (80, 70),
        };
        foreach (var (name, (aligned, coherent)) in rows)
            File.WriteAllText(Path.Combine(root, $"judged_{name}.csv"),
                "question_id,question,answer,aligned,coherent\n" +
                $"1,q,a,{aligned - 5},{coherent - 1}\n2,q,\"a, b\",{aligned + 5},{coherent + 1}\n3,q,a,REFUSAL,{coherent}\n");
        string outDir = Path.Combine(root, "report");
        ReportResult result = StudyReport.Write(root, outDir, new RankingOptions());
        Assert.That(result.Layout, Is.EqualTo("emergent-misalignment"));
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        foreach (JsonElement c in summary.RootElement.GetProperty("conditions").EnumerateArray())
        {
            var (aligned, coherent) = rows[c.GetProperty("condition").GetString()!];
            Assert.That(c.GetProperty("scores").GetProperty("aligned").GetProperty("mean").GetDouble(), Is.EqualTo(aligned).Within(1e-9));
            Assert.That(c.GetProperty("scores").GetProperty("aligned").GetProperty("n").GetInt32(), Is.EqualTo(2));
            Assert.That(c.GetProperty("scores").GetProperty("coherent").GetProperty("mean").GetDouble(), Is.EqualTo(coherent).Within(1e-9));
        }
        Assert.That(result.Figures.Select(f => f.File), Is.EquivalentTo(new[]
        {
            "plots/scores_by_condition.png", "plots/score_distributions.png", "plots/alignment_vs_coherence.png",
            "plots/aligned_by_layer_transform.png", "plots/heatmap_aligned.png", "plots/coherent_by_layer_transform.png", "plots/heatmap_coherent.png",
        }));
        foreach (Figure f in result.Figures) AssertDrawn(Path.Combine(outDir, f.File));
    }

    [Test]
    public void A_folder_that_is_no_study_is_a_clear_error()
    {
        string root = TestModels.TempDir("not-a-study");
        var e = Assert.Throws<InvalidDataException>(() => StudyReport.Write(root, Path.Combine(root, "r"), new RankingOptions()));
        Assert.That(e!.Message, Does.Contain("neither a BiPO study tree"));
    }

    /// <summary>A PNG that decodes to a picture with real content: many colours, not one flat fill.</summary>
    internal static void AssertDrawn(string path)
    {
        Assert.That(File.Exists(path), $"{path} missing");
        using SKBitmap bitmap = SKBitmap.Decode(path);
        Assert.That(bitmap, Is.Not.Null, $"{path} is not a PNG");
        Assert.That(bitmap.Width, Is.GreaterThanOrEqualTo(400), path);
        var colours = new HashSet<uint>();
        for (int y = 0; y < bitmap.Height; y += 3)
            for (int x = 0; x < bitmap.Width; x += 3)
                colours.Add((uint)bitmap.GetPixel(x, y));
        Assert.That(colours, Has.Count.GreaterThan(20), $"{path} looks empty");
    }
}
