using System.Globalization;
using SteerEngine.Cli.Demo;
using SteerEngine.Experiments.Persona;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Persona;

/// <summary>The prompting baseline: the exact level tables, and a run on the demo model that ends in its table and plot.</summary>
[NonParallelizable]
public class PersonaBaselineTests
{
    [Test]
    public void Seven_and_nine_levels_map_to_the_multipliers_in_steps_of_a_half()
    {
        Assert.That(PromptingBaseline.Levels(7).Select(l => (l.Level, l.Multiplier)),
            Is.EqualTo(new[] { (1, -1.5), (2, -1.0), (3, -0.5), (4, 0.0), (5, 0.5), (6, 1.0), (7, 1.5) }));
        Assert.That(PromptingBaseline.Levels(9).Select(l => (l.Level, l.Multiplier)),
            Is.EqualTo(new[] { (1, -2.0), (2, -1.5), (3, -1.0), (4, -0.5), (5, 0.0), (6, 0.5), (7, 1.0), (8, 1.5), (9, 2.0) }));
        Assert.That(Assert.Throws<ArgumentException>(() => PromptingBaseline.Levels(5))!.Message, Does.StartWith("--levels 5: expected 7"));
    }

    [Test]
    [CancelAfter(300_000)]
    public void Baseline_on_the_demo_model_writes_the_level_table_scores_win_rates_and_plot()
    {
        const int layer = 1;
        var (dir, vectorPath) = PersonaRunTests.MoodTraitAndVector("baseline", layer);
        string pairwise = Path.Combine(dir, "pairwise.json");
        File.WriteAllText(pairwise, $$"""{"name": "mood_pairwise", "kind": "pairwise", "prompt": {{System.Text.Json.JsonSerializer.Serialize(PersonaRunTests.PairwisePrompt)}}, "choices": {"a": "a", "b": "b"}, "output_column": "mood"}""");
        using var judge = PersonaRunTests.MeasuringJudge(DemoModel.Language(DemoFiles.ModelDir));
        Environment.SetEnvironmentVariable("STEER_TEST_KEY", "k");

        var (code, output, err) = SteerCli.Run("persona", "baseline", "--trait", "mood", "--dir", dir, "--model", DemoFiles.ModelDir, "--levels", "7",
            "--vector", vectorPath, "--layer", layer.ToString(CultureInfo.InvariantCulture), "--scale", "3", "--samples", "2", "--max-new-tokens", "40",
            "--judge", "openai", "--judge-model", "fake", "--judge-base-url", judge.BaseUrl, "--judge-api-key-env", "STEER_TEST_KEY", "--pairwise-rubric", pairwise);
        Assert.That(code, Is.EqualTo(0), err);
        TestContext.Out.WriteLine(output);
        string outDir = Path.Combine(dir, "baseline_7");
        var levels = File.ReadAllLines(Path.Combine(outDir, "levels.csv")).Skip(1).Select(l => string.Join(",", l.Split(',').Take(3))).ToList();
        Assert.That(levels, Is.EqualTo(new[] { "1,-1.5,-4.5", "2,-1.0,-3.0", "3,-0.5,-1.5", "4,0.0,0.0", "5,0.5,1.5", "6,1.0,3.0", "7,1.5,4.5" }));
        Assert.That(new FileInfo(Path.Combine(outDir, "baseline.png")).Length, Is.GreaterThan(1000));
        // 20 eval questions × 7 levels × 2 samples: scored per method, and judged in both orders per pair.
        Assert.That(judge.Requests, Is.EqualTo(2 * 280 + 2 * 280));

        var rows = File.ReadAllLines(Path.Combine(outDir, "baseline.md")).Where(l => l.StartsWith("| ") && char.IsDigit(l[2])).Select(l => l.Split('|')).ToList();
        Assert.That(rows, Has.Count.EqualTo(7));
        double[] steered = rows.Select(r => double.Parse(r[4], CultureInfo.InvariantCulture)).ToArray();
        Assert.That(SteeringSweep.SpearmanRho(Enumerable.Range(1, 7).Select(i => (double)i).ToArray(), steered), Is.GreaterThanOrEqualTo(0.9), string.Join(", ", steered));
        Assert.That(rows.All(r => int.Parse(r[5], CultureInfo.InvariantCulture) == 40), "40 pairs per level");
        // The demo model was never taught level instructions, so its prompted answers stay near a half at every level and steering wins.
        string overall = File.ReadAllLines(Path.Combine(outDir, "baseline.md")).Single(l => l.StartsWith("overall steered win rate"));
        Assert.That(double.Parse(overall.Split(": ")[1], CultureInfo.InvariantCulture), Is.GreaterThan(0.5), overall);
        Directory.Delete(dir, true);
    }
}
