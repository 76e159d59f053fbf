using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Tests.Judging;

/// <summary>The anthropic provider (official SDK) against a local server speaking the Messages API, with faults.</summary>
public class AnthropicJudgeTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task Ratings_and_pairwise_through_the_messages_api_with_retries()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        using var server = new FakeJudgeServer((prompt, attempt) => prompt switch
        {
            _ when prompt.Contains("busy") && attempt < 2 => new FakeReply.Status(529, "0"),
            _ when prompt.Contains("torn") && attempt < 1 => new FakeReply.Torn(),
            _ when prompt.Contains("bad") => new FakeReply.Status(400),
            _ when prompt.StartsWith("Which") => new FakeReply.Text(prompt.IndexOf("first", StringComparison.Ordinal) < prompt.IndexOf("second", StringComparison.Ordinal) ? "A" : "B"),
            _ => new FakeReply.Text("6"),
        });
        var retry = new RetryOptions(4, TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5));
        using var judge = new RetryingJudge(new AnthropicJudge(new Uri($"http://127.0.0.1:{server.Port}"), "claude-haiku-4-5", "k", retry.Timeout), retry);
        var rating = new Rubric { Name = "r", Kind = ScorerKind.Rating, System = "Be brief.", Prompt = "Rate: {answer}" };
        var pairwise = new Rubric { Name = "p", Kind = ScorerKind.Pairwise, Prompt = "Which? {answer_a} / {answer_b}" };
        string input = Path.Combine(dir, "a.jsonl"), against = Path.Combine(dir, "b.jsonl");
        File.WriteAllLines(input, new[] { "ok", "busy", "torn", "bad" }.Select((a, i) => $$"""{"id":"x{{i}}","question":"q","response":"{{a}} first","multiplier":{{i % 2}}}"""));
        File.WriteAllLines(against, Enumerable.Range(0, 4).Select(i => $$"""{"question":"q","response":"base second"}"""));
        var plan = new JudgePlan(input, new InputFields(), [rating, pairwise], against);
        string outPath = Path.Combine(dir, "judged.jsonl");
        await JudgeRun.RunAsync(plan.Units, judge, outPath, false, 4, Prices.None, new JudgeProgress());

        var byId = JudgeRecord.Read(outPath).ToDictionary(r => r.GetProperty("id").GetString()!);
        Assert.That(byId, Has.Count.EqualTo(8));
        Assert.That(byId["x0|r"].GetProperty("score").GetDouble(), Is.EqualTo(6));
        Assert.That(byId["x1|r"].GetProperty("status").GetString(), Is.EqualTo("scored"), "two 529s retried");
        Assert.That(byId["x2|r"].GetProperty("status").GetString(), Is.EqualTo("scored"), "a torn reply retried");
        Assert.That(byId["x3|r"].GetProperty("status").GetString(), Is.EqualTo("failed"));
        Assert.That(byId["x3|r"].GetProperty("error").GetString(), Does.Contain("400"));
        Assert.That(server.AskedCount("Rate: bad first"), Is.EqualTo(1), "a 400 is not retried");
        // The judge picks the item's answer in both orders: a wins, and both raw replies are kept.
        Assert.That(byId["x0|p"].GetProperty("winner").GetString(), Is.EqualTo("a"));
        Assert.That(byId["x0|p"].GetProperty("replies").EnumerateArray().Select(r => r.GetString()), Is.EqualTo(new[] { "A", "B" }));
        Assert.That(byId["x1|p"].GetProperty("condition").GetString(), Is.EqualTo("1"), "grouped by the multiplier");
        Directory.Delete(dir, true);
    }
}
