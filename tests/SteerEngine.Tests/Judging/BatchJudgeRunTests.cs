using System.Text.Json;
using SteerEngine.Judging.Batch;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Tests.Judging;

/// <summary>--batch against a local server speaking OpenAI's files and batches: split, submit, stop, resume without resubmitting.</summary>
public class BatchJudgeRunTests
{
    [Test]
    [CancelAfter(60_000)]
    public async Task A_stopped_batch_run_resumes_from_its_state_without_resubmitting()
    {
        string dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        using var server = new FakeJudgeServer((prompt, _) => prompt.Contains("fail")
            ? new FakeReply.Status(500)
            : prompt.StartsWith("Score") ? new FakeReply.Text("40", [("40", Math.Log(0.5)), ("60", Math.Log(0.5))]) : new FakeReply.Text("8"));
        server.HoldBatches = true;
        string input = Path.Combine(dir, "gen.jsonl");
        File.WriteAllLines(input, Enumerable.Range(0, 10).Select(i => JsonSerializer.Serialize(new { id = $"g{i}", question = "q", response = i == 3 ? "fail" : $"a{i}" })));
        Rubric rating = new() { Name = "r", Kind = ScorerKind.Rating, Prompt = "Rate: {answer}" };
        Rubric weighted = new() { Name = "w", Kind = ScorerKind.Weighted, Prompt = "Score: {answer}" };
        var plan = new JudgePlan(input, new InputFields(), [rating, weighted]);
        string outPath = Path.Combine(dir, "judged.jsonl");
        var endpoint = new OpenAiEndpoint(new Uri(server.BaseUrl), "gpt-4o-mini", "k", TimeSpan.FromSeconds(10));
        var run = new BatchJudgeRun(endpoint, new BatchLimits(MaxRequests: 7), TimeSpan.FromMilliseconds(20));

        // First run: submits 3 parts (20 requests, 7 per file), then is stopped while the batches run.
        using (var stop = new CancellationTokenSource())
        {
            Task first = run.RunAsync(plan.Units, outPath, Prices.None, new JudgeProgress(), cancel: stop.Token);
            while (server.BatchesCreated < 3 && !first.IsCompleted) await Task.Delay(10);
            if (first.IsFaulted) await first;
            if (first.IsCompleted) Assert.Fail($"created {server.BatchesCreated}, requests {server.Requests}: " + File.ReadAllText(Path.Combine(BatchJudgeRun.StateDirectory(outPath), "state.json")));
            await Task.Delay(100);
            Assert.That(first.IsCompleted, Is.False, "the batches are held");
            stop.Cancel(); // the run stops between polls, as a killed one would
            Assert.CatchAsync<OperationCanceledException>(() => first);
        }
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(BatchJudgeRun.StateDirectory(outPath), "state.json"))).RootElement;
        Assert.That(state.GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("batch_id").GetString()), Has.All.Not.Null);
        Assert.That(state.GetProperty("parts").EnumerateArray().Sum(p => p.GetProperty("requests").GetInt32()), Is.EqualTo(20));

        server.HoldBatches = false;
        var progress = new JudgeProgress();
        await new BatchJudgeRun(endpoint, new BatchLimits(MaxRequests: 7), TimeSpan.FromMilliseconds(20)).RunAsync(plan.Units, outPath, Prices.None, progress);
        Assert.That(server.BatchesCreated, Is.EqualTo(3), "nothing resubmitted");
        var records = JudgeRecord.Read(outPath).ToList();
        Assert.That(records.Select(r => r.GetProperty("id").GetString()).Order(),
            Is.EqualTo(Enumerable.Range(0, 10).SelectMany(i => new[] { $"g{i}|r", $"g{i}|w" }).Order()), "every unit once");
        foreach (JsonElement r in records)
        {
            bool failed = r.GetProperty("answer").GetString() == "fail";
            Assert.That(r.GetProperty("status").GetString(), Is.EqualTo(failed ? "failed" : "scored"), r.ToString());
            if (!failed) Assert.That(r.GetProperty("score").GetDouble(), Is.EqualTo(r.GetProperty("rubric").GetString() == "r" ? 8 : 50).Within(1e-5));
        }
        Directory.Delete(dir, true);
    }
}
