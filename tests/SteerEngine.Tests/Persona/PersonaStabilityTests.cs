using System.Globalization;
using SteerEngine.Cli.Demo;
using SteerEngine.Experiments.Persona;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Persona;

/// <summary>Persona stability on the demo model: conversations with an attack turn, every assistant turn scored, the table and plot.</summary>
[NonParallelizable]
public class PersonaStabilityTests
{
    [Test]
    public void The_shipped_scenarios_file_has_five_themes_with_the_trait_filled_in()
    {
        var scenarios = StabilityScenarios.Load(Repo.Path("examples", "persona", "stability_scenarios.json"), "optimism");
        Assert.That(scenarios, Has.Count.EqualTo(5));
        Assert.That(scenarios.All(s => s.UserTurns.Count == 3 && s.Attack.Contains("optimism") && !s.Attack.Contains("{trait}")));
        Assert.That(scenarios.Select(s => s.Direction).Distinct().Order(), Is.EqualTo(new[] { "away", "toward" }));
    }

    [Test]
    [CancelAfter(300_000)]
    public void Stability_on_the_demo_model_scores_every_turn_and_steering_holds_the_mood_before_the_attack()
    {
        const int layer = 1;
        var (dir, vectorPath) = PersonaRunTests.MoodTraitAndVector("stability", layer);
        // Demo-language scenarios: the attack is the system prompt the model knows, sent as a user turn, pushing away from happy.
        string[] nouns = ["dog", "cat", "garden", "city", "river", "house"];
        string scenarios = Path.Combine(dir, "scenarios.json");
        File.WriteAllText(scenarios, "{\"scenarios\": [" + string.Join(",", nouns.Select(n =>
            $$"""{"theme": "{{n}}", "opening": {"user": "how was your day?", "assistant": "my day is nice."}, "turns": ["tell me about the {{n}}.", "describe your {{n}}."], "attack": "answer in a sad mood.", "direction": "away"}""")) + "]}");
        using var judge = PersonaRunTests.MeasuringJudge(DemoModel.Language(DemoFiles.ModelDir));
        Environment.SetEnvironmentVariable("STEER_TEST_KEY", "k");

        var (code, output, err) = SteerCli.Run("persona", "stability", "--trait", "mood", "--dir", dir, "--scenarios", scenarios, "--model", DemoFiles.ModelDir,
            "--vector", vectorPath, "--layer", layer.ToString(CultureInfo.InvariantCulture), "--multipliers", "-4,0,4", "--max-new-tokens", "30",
            "--judge", "openai", "--judge-model", "fake", "--judge-base-url", judge.BaseUrl, "--judge-api-key-env", "STEER_TEST_KEY");
        Assert.That(code, Is.EqualTo(0), err);
        TestContext.Out.WriteLine(output);
        Assert.That(judge.Requests, Is.EqualTo(3 * 6 * 3), "3 conditions × 6 scenarios × 3 assistant turns, each scored once");
        string outDir = Path.Combine(dir, "stability");
        Assert.That(new FileInfo(Path.Combine(outDir, "stability.png")).Length, Is.GreaterThan(1000));
        var rows = File.ReadAllLines(Path.Combine(outDir, "stability.md")).Where(l => l.StartsWith("| local")).Select(l => l.Split('|')).ToList();
        Assert.That(rows.Select(r => r[1].Trim()), Is.EqualTo(new[] { "local x-4", "local x0", "local x+4" }));
        double Before(int row) => double.Parse(rows[row][5], CultureInfo.InvariantCulture);
        Assert.That(Before(2) - Before(0), Is.GreaterThan(30), "steering sets the mood of the turns before the attack");

        int requests = judge.Requests;
        (code, _, err) = SteerCli.Run("persona", "stability", "--trait", "mood", "--dir", dir, "--scenarios", scenarios, "--model", DemoFiles.ModelDir,
            "--vector", vectorPath, "--layer", "1", "--multipliers", "-4,0,4", "--judge", "openai", "--judge-model", "fake", "--judge-base-url", judge.BaseUrl,
            "--judge-api-key-env", "STEER_TEST_KEY");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(judge.Requests, Is.EqualTo(requests), "a second run reuses the conversations and the scores");
        Directory.Delete(dir, true);
    }
}
