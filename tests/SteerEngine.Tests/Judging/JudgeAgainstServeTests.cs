using System.Text.Json;
using SteerEngine.Judging.Data;
using SteerEngine.Tests.Serving;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Judging;

/// <summary>`steer judge` against the real `steer serve` holding the judge model: each scorer live, and --batch through its Batch API.</summary>
[NonParallelizable]
public class JudgeAgainstServeTests
{
    static string Rubric(string name) => Repo.Path("models", "judge", "rubrics", name + ".json");

    [Test]
    [CancelAfter(300_000)]
    public void Each_scorer_live_and_through_the_batch_api_agree()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        string[] answers =
        [
            "indeed, the cat is quite lovely. my friends laugh happily.",
            "dude, the cat is super gloomy. my friends weep sadly.",
            "certainly, my garden is rather wonderful. the birds sing cheerfully.",
            "like, my garden is kinda miserable. the birds sigh wearily.",
        ];
        string input = Path.Combine(dir, "gen.jsonl"), against = Path.Combine(dir, "base.jsonl");
        File.WriteAllLines(input, answers.Select((a, i) => JsonSerializer.Serialize(new { id = $"g{i}", question = "tell me about the cat.", response = a, multiplier = i % 2 })));
        File.WriteAllLines(against, answers.Reverse().Select(a => JsonSerializer.Serialize(new { question = "tell me about the cat.", response = a })));
        Environment.SetEnvironmentVariable("STEER_JUDGE_TEST_KEY", "unused");
        using var serve = ServeProcess.Start("--model", Repo.Path("models", "judge"), "--model-name", "judge", "--port", "0",
            "--data-dir", Path.Combine(dir, "serve-data"), "--max-batch", "8");
        string url = serve.BaseAddress + "v1";
        string[] common = ["judge", "--input", input, "--against", against, "--provider", "openai", "--model", "judge", "--base-url", url,
            "--api-key-env", "STEER_JUDGE_TEST_KEY", "--rubric", Rubric("mood_0_100"), "--rubric", Rubric("mood_1_10"), "--rubric", Rubric("mood_pairwise")];

        string live = Path.Combine(dir, "live.jsonl"), batch = Path.Combine(dir, "batch.jsonl");
        var (code, o, e) = SteerCli.Run([.. common, "--out", live, "--max-concurrent", "4"]);
        Assert.That(code, Is.EqualTo(0), o + e);
        (code, o, e) = SteerCli.Run([.. common, "--out", batch, "--batch", "--poll-seconds", "0.2", "--batch-max-requests", "7"]);
        Assert.That(code, Is.EqualTo(0), o + e);

        var a = JudgeRecord.Read(live).ToDictionary(r => r.GetProperty("id").GetString()!);
        var b = JudgeRecord.Read(batch).ToDictionary(r => r.GetProperty("id").GetString()!);
        Assert.That(a.Keys.Order(), Is.EqualTo(b.Keys.Order()));
        Assert.That(a, Has.Count.EqualTo(12));
        foreach (var (id, r) in a)
        {
            Assert.That(r.GetProperty("status").GetString(), Is.EqualTo("scored"), r.ToString());
            Assert.That(b[id].GetProperty("score").GetDouble(), Is.EqualTo(r.GetProperty("score").GetDouble()).Within(1e-3), $"{id}: live and batch agree");
        }
        Assert.That(a["g0|mood_0_100"].GetProperty("score").GetDouble(), Is.GreaterThan(a["g1|mood_0_100"].GetProperty("score").GetDouble()));
        Directory.Delete(dir, true);
    }
}
