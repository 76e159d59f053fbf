using SteerEngine.Experiments;
using SteerEngine.Experiments.Stages;
using SteerEngine.Judging.Batch;
using SteerEngine.Tests.Judging;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>The judge stage's Batch API judge against a local server speaking OpenAI's files and batches.</summary>
public class BatchApiJudgeTests
{
    [Test]
    [CancelAfter(60_000)]
    public void Samples_a_batch_gave_no_reply_fail_the_item_and_only_they_are_submitted_again()
    {
        // The answer "broken" gets an HTTP 500 inside the batch the first time it is asked, a reply after that.
        using var server = new FakeJudgeServer((prompt, n) => prompt.Contains("broken") && n == 0
            ? new FakeReply.Status(500)
            : new FakeReply.Text("40", [("40", Math.Log(0.5)), ("60", Math.Log(0.5))]));
        string dir = TestModels.TempDir("batch-judge");
        string rubric = Path.Combine(dir, "rubric.json");
        File.WriteAllText(rubric, "{\"kind\": \"weighted\", \"prompt\": \"rate the mood of this answer from 0 to 100.\\nanswer: {answer}\"}");
        Environment.SetEnvironmentVariable("STEER_TEST_JUDGE_KEY", "test-key");
        var task = new JudgeTask("happy", rubric, "logprob");
        var settings = new JudgeSettings("openai", "judge", server.BaseUrl, "STEER_TEST_JUDGE_KEY", Batch: true, [task]) { BatchPoll = TimeSpan.FromMilliseconds(20) };
        var samples = Enumerable.Range(0, 5).Select(i => new JudgeSample($"s{i}", "q", i == 2 ? "broken" : $"answer {i}", 1, null)).ToList();
        string output = Path.Combine(dir, "happy_scores_ep1.jsonl");
        string records = BatchApiJudge.RecordsPath(output);

        using IJudge judge = LibraryJudge.Factory.Create(settings);
        Assert.That(judge, Is.TypeOf<BatchApiJudge>());
        var verdicts = new List<JudgeVerdict>();
        var e = Assert.Throws<JudgeUnavailableException>(() => { foreach (JudgeVerdict v in judge.Score(task, samples, output)) verdicts.Add(v); })!;
        Assert.That(e.Message, Does.Contain("1 of 5 samples got no verdict"));
        Assert.That(verdicts.Select(v => v.Id), Is.EqualTo(new[] { "s0", "s1", "s3", "s4" }), "the others' verdicts are handed on before the item fails");
        Assert.That(verdicts.Select(v => v.Score), Is.All.EqualTo(50).Within(1e-9));
        Assert.That(File.Exists(records) || Directory.Exists(BatchJudgeRun.StateDirectory(records)), Is.False, "the finished batch's work files are removed");

        JudgeVerdict again = judge.Score(task, [samples[2]], output).Single();
        Assert.That(again.Id, Is.EqualTo("s2"));
        Assert.That(again.Score, Is.EqualTo(50).Within(1e-9));
        Assert.That(server.BatchesCreated, Is.EqualTo(2), "a new batch for the failed sample only");
        Assert.That(server.Asked.Where(kv => !kv.Key.Contains("broken")).Select(kv => kv.Value), Is.All.EqualTo(1));
    }
}
