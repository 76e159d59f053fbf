using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Judging.Data;
using SteerEngine.Tests.Serving;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Judging;

/// <summary>
/// `steer judge` against the real `steer serve` holding the judge model, with each scorer (weighted, rating, pairwise):
/// an uninterrupted live run, and the `steer judge` process killed with SIGKILL partway and started again, live and
/// through the server's Batch API. The restarted run must end with every unit once and the uninterrupted run's scores.
/// A forwarder in front of the server holds the killed run's requests at a chosen point, so the kill lands mid-run
/// however fast the machine is.
/// </summary>
[NonParallelizable]
public class JudgeAgainstServeTests
{
    const int Units = 12; // 4 answers × 3 rubrics
    static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);
    string _dir = null!, _input = null!, _against = null!;
    ServeProcess _serve = null!;
    Dictionary<string, JsonElement> _uninterrupted = null!;

    static string Rubric(string name) => Repo.Path("models", "judge", "rubrics", name + ".json");

    string[] Judge(string url, string outPath) =>
    [
        "judge", "--input", _input, "--against", _against, "--provider", "openai", "--model", "judge", "--base-url", url,
        "--api-key-env", "STEER_JUDGE_TEST_KEY", "--rubric", Rubric("mood_0_100"), "--rubric", Rubric("mood_1_10"),
        "--rubric", Rubric("mood_pairwise"), "--out", outPath,
    ];

    [OneTimeSetUp]
    public void StartServerAndJudgeOnce()
    {
        _dir = Directory.CreateTempSubdirectory("steer-judge-").FullName;
        string[] answers =
        [
            "indeed, the cat is quite lovely. my friends laugh happily.",
            "dude, the cat is super gloomy. my friends weep sadly.",
            "certainly, my garden is rather wonderful. the birds sing cheerfully.",
            "like, my garden is kinda miserable. the birds sigh wearily.",
        ];
        _input = Path.Combine(_dir, "gen.jsonl");
        _against = Path.Combine(_dir, "base.jsonl");
        File.WriteAllLines(_input, answers.Select((a, i) => JsonSerializer.Serialize(new { id = $"g{i}", question = "tell me about the cat.", response = a, multiplier = i % 2 })));
        File.WriteAllLines(_against, answers.Reverse().Select(a => JsonSerializer.Serialize(new { question = "tell me about the cat.", response = a })));
        Environment.SetEnvironmentVariable("STEER_JUDGE_TEST_KEY", "unused"); // inherited by the steer processes
        _serve = ServeProcess.Start("--model", Repo.Path("models", "judge"), "--model-name", "judge", "--port", "0",
            "--data-dir", Path.Combine(_dir, "serve-data"), "--max-batch", "8");

        string live = Path.Combine(_dir, "uninterrupted.jsonl");
        var (code, o, e) = SteerCli.Run([.. Judge(_serve.BaseAddress + "v1", live), "--max-concurrent", "4"]);
        Assert.That(code, Is.EqualTo(0), o + e);
        _uninterrupted = ById(live);
    }

    [OneTimeTearDown]
    public void StopServer()
    {
        _serve.Dispose();
        Directory.Delete(_dir, true);
    }

    static Dictionary<string, JsonElement> ById(string path)
    {
        var records = JudgeRecord.Read(path).ToList();
        var ids = records.Select(r => r.GetProperty("id").GetString()!).ToList();
        Assert.That(ids, Is.Unique, $"{path}: a unit judged twice");
        return records.ToDictionary(r => r.GetProperty("id").GetString()!);
    }

    [Test]
    public void Every_scorer_scores_every_unit_and_the_happy_answer_scores_higher()
    {
        Assert.That(_uninterrupted, Has.Count.EqualTo(Units));
        Assert.That(_uninterrupted.Values.Select(r => r.GetProperty("status").GetString()), Has.All.EqualTo("scored"), string.Join("\n", _uninterrupted.Values));
        Assert.That(_uninterrupted["g0|mood_0_100"].GetProperty("score").GetDouble(), Is.GreaterThan(_uninterrupted["g1|mood_0_100"].GetProperty("score").GetDouble()));
        Assert.That(_uninterrupted["g0|mood_pairwise"].GetProperty("winner").GetString(), Is.EqualTo("a"));
    }

    [Test]
    [CancelAfter(300_000)]
    public void Live_run_killed_with_sigkill_resumes_to_the_uninterrupted_result()
    {
        // Chat calls are held until the run's output has been open for over a second (its flush interval), then three
        // pass: the first record written flushes, and the run is blocked on the fourth call when it is killed.
        using var proxy = new GatedProxy(_serve.BaseAddress, (method, path) => path.EndsWith("/chat/completions"), allowance: 0);
        string outPath = Path.Combine(_dir, "live-killed.jsonl");
        string[] args = [.. Judge(proxy.BaseUrl, outPath), "--max-concurrent", "1"];
        int linesAtKill;
        using (SteerChild judge = SteerProcess.Start(args))
        {
            WaitFor(() => proxy.Waiting > 0, judge, "the first judge call");
            Thread.Sleep(1_200);
            proxy.Allow(3);
            WaitFor(() => Lines(outPath) > 0 && proxy.Waiting > 0, judge, "a flushed record and the run blocked on a held call");
            judge.Kill(); // SIGKILL: no flush, no clean-up
            linesAtKill = Lines(outPath);
        }
        Assert.That(linesAtKill, Is.InRange(1, 3), "killed partway");
        proxy.Allow(int.MaxValue);

        var (code, printed) = SteerProcess.Run(Bound, [.. args, "--resume"]);
        Assert.That(code, Is.EqualTo(0), printed);
        Assert.That(printed, Does.Contain($"judged {Units - linesAtKill} (0 failed)").And.Contain($"{linesAtKill} already there"), "the restart judges only what the output lacks");
        AssertSameAsUninterrupted(outPath);
    }

    [Test]
    [CancelAfter(300_000)]
    public void Batch_run_killed_with_sigkill_resumes_without_resubmitting()
    {
        // 16 requests in parts of at most 7; one part's results may be downloaded, so the run is killed with that part's
        // records written and the other parts submitted but not converted.
        using var proxy = new GatedProxy(_serve.BaseAddress, (method, path) => method == "GET" && path.EndsWith("/content"), allowance: 1);
        string outPath = Path.Combine(_dir, "batch-killed.jsonl");
        string[] args = [.. Judge(proxy.BaseUrl, outPath), "--batch", "--poll-seconds", "0.2", "--batch-max-requests", "7"];
        int linesAtKill, created;
        using (SteerChild judge = SteerProcess.Start(args))
        {
            WaitFor(() => Lines(outPath) > 0 && proxy.Waiting > 0, judge, "one part converted and the run blocked on the next download");
            judge.Kill();
            linesAtKill = Lines(outPath);
            created = proxy.Seen("POST", "/v1/batches");
        }
        Assert.That(linesAtKill, Is.InRange(1, Units - 1), "killed partway");
        Assert.That(created, Is.EqualTo(3), "16 requests in parts of at most 7, a unit's calls in one part");
        proxy.Allow(int.MaxValue);

        var (code, printed) = SteerProcess.Run(Bound, args);
        Assert.That(code, Is.EqualTo(0), printed);
        Assert.That(proxy.Seen("POST", "/v1/batches"), Is.EqualTo(created), "the restart submits nothing again");
        Assert.That(printed, Does.Contain($"judged {Units - linesAtKill} (0 failed)").And.Contain($"{linesAtKill} already there"), printed);
        AssertSameAsUninterrupted(outPath);
    }

    void AssertSameAsUninterrupted(string outPath)
    {
        var resumed = ById(outPath);
        Assert.That(resumed.Keys.Order(), Is.EqualTo(_uninterrupted.Keys.Order()), "every unit, once");
        foreach (var (id, r) in _uninterrupted)
        {
            JsonElement x = resumed[id];
            Assert.That(x.GetProperty("status").GetString(), Is.EqualTo("scored"), x.ToString());
            Assert.That(x.GetProperty("score").GetDouble(), Is.EqualTo(r.GetProperty("score").GetDouble()).Within(1e-3), $"{id}: the same score as the uninterrupted run");
            if (r.TryGetProperty("winner", out var winner)) Assert.That(x.GetProperty("winner").GetString(), Is.EqualTo(winner.GetString()), id);
        }
    }

    static int Lines(string path) => File.Exists(path) ? File.ReadAllLines(path).Length : 0;

    static void WaitFor(Func<bool> condition, SteerChild judge, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (judge.HasExited) Assert.Fail($"steer judge exited (code {judge.ExitCode}) before {what}");
            if (clock.Elapsed > Bound) Assert.Fail($"no {what} within {Bound.TotalSeconds:0} s");
            Thread.Sleep(20);
        }
    }
}
