using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Tests.Judging;

/// <summary>The openai provider (official SDK) behind the retry pipeline, against a local server that injects faults.</summary>
public class OpenAiJudgeFaultTests
{
    static readonly Rubric Rating = new() { Name = "r", Kind = ScorerKind.Rating, Prompt = "Rate this: {answer}" };
    static readonly Rubric Weighted = new() { Name = "w", Kind = ScorerKind.Weighted, Prompt = "Score this: {answer}", TextAnswers = ["REFUSAL"] };

    /// <summary>The answer text says what the server does: fault kind, then how many attempts it lasts.</summary>
    static FakeReply Script(string prompt, int attempt)
    {
        string answer = prompt[(prompt.IndexOf(": ", StringComparison.Ordinal) + 2)..];
        string kind = answer.Split('-')[0];
        FakeReply ok = prompt.StartsWith("Score")
            ? new FakeReply.Text("80", [("80", Math.Log(0.5)), (" 60", Math.Log(0.3)), ("REFUSAL", Math.Log(0.1))])
            : new FakeReply.Text("Score: 7");
        return kind switch
        {
            "rate" when attempt < 2 => new FakeReply.Status(429, "0"),
            "overload" when attempt < 2 => new FakeReply.Status(500 + attempt * 3), // 500, then 503
            "hang" when attempt < 1 => new FakeReply.Hang(TimeSpan.FromSeconds(5), "Score: 7"),
            "torn" when attempt < 2 => new FakeReply.Torn(),
            "bad" => new FakeReply.Status(400),
            "down" => new FakeReply.Status(502),
            "words" => new FakeReply.Text("I cannot say."),
            _ => ok,
        };
    }

    static RetryOptions FastRetries => new(MaxAttempts: 4, BaseDelay: TimeSpan.FromMilliseconds(5), MaxDelay: TimeSpan.FromMilliseconds(50),
        AttemptTimeout: TimeSpan.FromMilliseconds(1500));

    static string WriteInput(string dir, IEnumerable<string> answers)
    {
        string path = Path.Combine(dir, "gen.jsonl");
        File.WriteAllLines(path, answers.Select((a, i) => JsonSerializer.Serialize(new { id = $"g{i}", question = "q?", response = a, multiplier = i % 3 })));
        return path;
    }

    [Test]
    [CancelAfter(60_000)]
    public async Task Every_item_ends_scored_or_failed_under_429_5xx_timeouts_and_torn_replies()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        string[] kinds = ["ok", "rate", "overload", "hang", "torn", "bad", "down", "words"];
        var answers = Enumerable.Range(0, 24).Select(i => $"{kinds[i % kinds.Length]}-{i}").ToList();
        using var server = new FakeJudgeServer(Script);
        var endpoint = new OpenAiEndpoint(new Uri(server.BaseUrl), "gpt-4o-mini", "test-key", FastRetries.Timeout);
        using var judge = new RetryingJudge(new OpenAiJudge(endpoint), FastRetries);
        var plan = new JudgePlan(WriteInput(dir, answers), new InputFields(), [Rating, Weighted]);
        string outPath = Path.Combine(dir, "judged.jsonl");
        var progress = new JudgeProgress();
        await JudgeRun.RunAsync(plan.Units, judge, outPath, resume: false, maxConcurrent: 8, Prices.None, progress);

        var records = JudgeRecord.Read(outPath).ToList();
        Assert.That(records, Has.Count.EqualTo(48), "one record per answer and rubric");
        Assert.That(records.Select(r => r.GetProperty("id").GetString()).Distinct().Count(), Is.EqualTo(48), "none twice");
        foreach (JsonElement r in records)
        {
            string answer = r.GetProperty("answer").GetString()!, rubric = r.GetProperty("rubric").GetString()!, status = r.GetProperty("status").GetString()!;
            string kind = answer.Split('-')[0];
            string want = kind switch
            {
                "bad" or "down" => "failed",
                "words" => rubric == "r" ? "unparsed" : "no_score",
                _ => "scored",
            };
            Assert.That(status, Is.EqualTo(want), $"{answer} under {rubric}: {r}");
            if (status == "scored")
                Assert.That(r.GetProperty("score").GetDouble(), Is.EqualTo(rubric == "r" ? 7 : (80 * 0.5 + 60 * 0.3) / 0.8).Within(1e-5), "the wire carries float log-probs");
            if (status == "failed") Assert.That(r.GetProperty("error").GetString(), Does.Contain(kind == "bad" ? "400" : "502"));
            Assert.That(r.GetProperty("replies").GetArrayLength(), Is.EqualTo(1), "the raw reply (null when failed) is kept");
        }
        string Prompt(string rubricPrompt, string answer) => rubricPrompt.Replace("{answer}", answer);
        Assert.That(server.AskedCount(Prompt(Rating.Prompt, "bad-5")), Is.EqualTo(1), "a 400 is not retried");
        Assert.That(server.AskedCount(Prompt(Rating.Prompt, "down-6")), Is.EqualTo(4), "a lasting 5xx is tried max-attempts times");
        Assert.That(server.AskedCount(Prompt(Rating.Prompt, "rate-1")), Is.EqualTo(3), "two 429s, then the reply");
        Assert.That(server.AskedCount(Prompt(Rating.Prompt, "torn-4")), Is.EqualTo(3), "two torn replies, then the reply");
        Assert.That(server.AskedCount(Prompt(Rating.Prompt, "hang-3")), Is.EqualTo(2), "the hung attempt timed out, the next answered");
        Assert.That((progress.Done, progress.Failed), Is.EqualTo((48L, 12L)));
        Directory.Delete(dir, true);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Retry_after_is_honoured()
    {
        using var server = new FakeJudgeServer((_, attempt) => attempt == 0 ? new FakeReply.Status(429, "1") : new FakeReply.Text("Score: 3"));
        var endpoint = new OpenAiEndpoint(new Uri(server.BaseUrl), "m", "k", TimeSpan.FromSeconds(10));
        using var judge = new RetryingJudge(new OpenAiJudge(endpoint), FastRetries);
        var clock = Stopwatch.StartNew();
        JudgeReply reply = await judge.CompleteAsync(new JudgeRequest([new ChatTurn("user", "x")], 4), CancellationToken.None);
        Assert.That(reply.Text, Is.EqualTo("Score: 3"));
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(950)), "waited the server's 1 s, not the 5 ms back-off");
        Assert.That(judge.Attempts, Is.EqualTo(2));
    }

    [Test]
    public void Retry_after_parses_seconds_and_dates()
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.That(JudgeCallException.ParseRetryAfter("2", now), Is.EqualTo(TimeSpan.FromSeconds(2)));
        Assert.That(JudgeCallException.ParseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now), Is.EqualTo(TimeSpan.FromSeconds(30)));
        Assert.That(JudgeCallException.ParseRetryAfter("soon", now), Is.Null);
        Assert.That(JudgeCallException.ParseRetryAfter(null, now), Is.Null);
    }

    [Test]
    [CancelAfter(30_000)]
    public async Task Resume_judges_only_what_the_output_lacks_and_drops_a_torn_last_line()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        using var server = new FakeJudgeServer(Script);
        var endpoint = new OpenAiEndpoint(new Uri(server.BaseUrl), "m", "k", TimeSpan.FromSeconds(10));
        using var judge = new RetryingJudge(new OpenAiJudge(endpoint), FastRetries);
        string input = WriteInput(dir, Enumerable.Range(0, 10).Select(i => $"ok-{i}"));
        var plan = new JudgePlan(input, new InputFields(), [Rating]);
        string outPath = Path.Combine(dir, "judged.jsonl");
        await JudgeRun.RunAsync(plan.Units, judge, outPath, false, 4, Prices.None, new JudgeProgress());
        // A killed run: keep 6 whole records and half of the 7th.
        string[] lines = File.ReadAllLines(outPath);
        File.WriteAllText(outPath, string.Join("\n", lines.Take(6)) + "\n" + lines[6][..20]);
        int before = server.Requests;
        Assert.ThrowsAsync<IOException>(() => JudgeRun.RunAsync(plan.Units, judge, outPath, false, 4, Prices.None, new JudgeProgress()),
            "an existing output needs --resume");
        var progress = new JudgeProgress();
        await JudgeRun.RunAsync(plan.Units, judge, outPath, true, 4, Prices.None, progress);
        Assert.That((progress.Skipped, progress.Done), Is.EqualTo((6L, 4L)));
        Assert.That(server.Requests - before, Is.EqualTo(4));
        var ids = JudgeRecord.Read(outPath).Select(r => r.GetProperty("item_id").GetString()).ToList();
        Assert.That(ids.Order(), Is.EqualTo(Enumerable.Range(0, 10).Select(i => $"g{i}").Order()), "every item once");
        Directory.Delete(dir, true);
    }
}
