using System.Text.Json;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;
using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Judging;

/// <summary>The shipped judge model (models/judge) in-process, under each scorer.</summary>
public class LocalJudgeTests
{
    static string Rubric(string name) => Repo.Path("models", "judge", "rubrics", name + ".json");

    [Test]
    [CancelAfter(120_000)]
    public async Task The_judge_model_rates_weighs_and_compares_demo_answers()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        string happy = "indeed, the cat is quite lovely. my friends laugh happily. the garden is rather wonderful.";
        string sad = "dude, the cat is super gloomy. my friends weep sadly. the garden is totally miserable.";
        string broken = "cat the is. lovely weep the my is. friends friends happily the.";
        string input = Path.Combine(dir, "a.jsonl"), against = Path.Combine(dir, "b.jsonl");
        File.WriteAllLines(input, new[] { happy, sad, broken }.Select((a, i) => JsonSerializer.Serialize(new { id = $"x{i}", question = "tell me about the cat.", response = a })));
        File.WriteAllLines(against, new[] { sad, happy, sad }.Select(a => JsonSerializer.Serialize(new { question = "tell me about the cat.", response = a })));
        var rubrics = new[] { "mood_0_100", "coherence_0_100", "mood_1_10", "mood_pairwise" }.Select(n => RubricFile.Load(Rubric(n))).ToList();
        var plan = new JudgePlan(input, new InputFields(), rubrics, against);
        string outPath = Path.Combine(dir, "judged.jsonl");
        using (var judge = new LocalJudge(LanguageModel.Load(Repo.Path("models", "judge")), maxBatch: 8, ownsModel: true))
            await JudgeRun.RunAsync(plan.Units, judge, outPath, false, 8, Prices.None, new JudgeProgress());

        var r = JudgeRecord.Read(outPath).ToDictionary(x => x.GetProperty("id").GetString()!);
        Assert.That(r, Has.Count.EqualTo(12));
        Assert.That(r.Values.Select(x => x.GetProperty("status").GetString()), Has.All.EqualTo("scored"), string.Join("\n", r.Values));
        double Score(string id) => r[id].GetProperty("score").GetDouble();
        Assert.That(Score("x0|mood_0_100"), Is.GreaterThan(70), "happy answer");
        Assert.That(Score("x1|mood_0_100"), Is.LessThan(30), "sad answer");
        Assert.That(Score("x2|coherence_0_100"), Is.LessThan(30), "no sentence of the broken answer is well formed");
        Assert.That(Score("x0|coherence_0_100"), Is.GreaterThan(Score("x2|coherence_0_100") + 30), "two of three well formed beat none");
        Assert.That(Score("x0|mood_1_10"), Is.GreaterThan(Score("x1|mood_1_10")));
        Assert.That(r["x0|mood_pairwise"].GetProperty("winner").GetString(), Is.EqualTo("a"), "happy beats sad in both orders");
        Assert.That(r["x1|mood_pairwise"].GetProperty("winner").GetString(), Is.EqualTo("b"));
        Assert.That(r["x0|mood_0_100"].GetProperty("top_logprobs").GetArrayLength(), Is.EqualTo(20), "the raw top-20 kept");
        Directory.Delete(dir, true);
    }
}
