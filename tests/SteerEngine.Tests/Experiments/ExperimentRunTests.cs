using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Experiments;
using SteerEngine.Experiments.Stages;
using SteerEngine.Generation.Jobs;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>
/// The experiment stages on the demo model: one sequential run is the reference; stages run at once in separate
/// processes, a stage killed with SIGKILL and restarted, and shards merged must all give the same bytes.
/// </summary>
[NonParallelizable]
public class ExperimentRunTests
{
    string _dir = null!, _file = null!, _reference = null!;
    Experiment _experiment = null!;

    [OneTimeSetUp]
    public void SequentialReference()
    {
        _dir = TestModels.TempDir("experiment");
        _file = DemoStudy.Write(_dir);
        _experiment = Experiment.Load(_file);
        _reference = Path.Combine(_dir, "reference");
        RunSummary s = new ExperimentRunner(_experiment, _reference, new MeasuringJudge()).Run("all", Shard.All);
        Assert.That(s.Ok, Is.True, string.Join("; ", s.Failed.Concat(s.Blocked)));
        Assert.That(s.Finished, Is.EqualTo(2 + 4 + 8));
    }

    [Test]
    public void Sequential_run_writes_the_study_layout()
    {
        foreach (int layer in new[] { 1, 2 })
        {
            Assert.That(File.Exists(Path.Combine(_reference, "vector", "happy_demo", $"layer{layer}", $"vec_ep2_layer{layer}.pt")));
            Assert.That(File.ReadAllLines(Path.Combine(_reference, "vector", "happy_demo", $"layer{layer}", "evaluation_metrics.jsonl")), Has.Length.EqualTo(2));
            foreach (int epoch in new[] { 1, 2 })
            {
                string evals = Path.Combine(_reference, "vector_evals", "demo", $"layer{layer}");
                Assert.That(File.ReadAllLines(Path.Combine(evals, $"generations_ep{epoch}.jsonl")), Has.Length.EqualTo(4 * 5 * 2));
                Assert.That(File.ReadAllLines(Path.Combine(evals, $"happy_scores_ep{epoch}.jsonl")), Has.Length.EqualTo(40));
                Assert.That(File.ReadAllLines(Path.Combine(evals, $"coherence_scores_ep{epoch}.jsonl")), Has.Length.EqualTo(40));
            }
        }
        Assert.That(File.ReadAllText(Path.Combine(_reference, "config.json")), Does.Contain("\"behavior\": \"happy\""));
        Assert.That(Directory.EnumerateFiles(_reference, "*.*", SearchOption.AllDirectories).Where(f => f.EndsWith(".lock") || f.EndsWith(".partial")), Is.Empty);
        var rows = ExperimentStatus.Of(_experiment, _reference);
        Assert.That(rows.Select(r => r.State).Distinct(), Is.EqualTo(new[] { "done" }));
        Assert.That(rows, Has.Count.EqualTo(14));
        Assert.That(File.Exists(Path.Combine(_reference, "report", "index.html")), "a run of all stages writes the report");
    }

    [Test]
    public void Status_tells_ready_waiting_and_running_items_apart()
    {
        string root = Path.Combine(_dir, "status");
        var rows = ExperimentStatus.Of(_experiment, root);
        Assert.That(rows.Where(r => r.Stage == "train").Select(r => r.State), Is.All.EqualTo("ready"));
        Assert.That(rows.Where(r => r.Stage != "train").Select(r => r.State), Is.All.EqualTo("waiting"));
        var layout = new ExperimentLayout(root, _experiment.Behavior);
        using ItemLock? held = ItemLock.TryAcquire(ExperimentLayout.Lock(layout.Metrics("demo", 1)), _experiment.Locks);
        ItemStatus running = ExperimentStatus.Of(_experiment, root).First(r => r.Item == "demo layer1");
        Assert.That(running.State, Is.EqualTo("running"));
        Assert.That(running.Detail, Does.Contain($"pid {Environment.ProcessId}"));
    }

    [Test]
    public void Report_of_the_run_shows_the_trait_rising_with_the_multiplier()
    {
        string outDir = Path.Combine(_dir, "report");
        var result = SteerEngine.Experiments.Report.StudyReport.Write(_reference, outDir, new SteerEngine.Experiments.Report.RankingOptions { Trait = "happy", Floor = 30 });
        Assert.That(result.Figures.Select(f => f.File), Does.Contain("happy_vs_multiplier.png").And.Contain("bipo_loss.png"));
        var data = SteerEngine.Experiments.Report.BipoStudyReader.Read(_reference);
        var means = data.Scores.Where(s => s.Task == "happy").GroupBy(s => s.Condition.Multiplier).OrderBy(g => g.Key).Select(g => g.Average(s => s.Score)).ToList();
        Assert.That(means[^1], Is.GreaterThan(means[0] + 30), $"happy by multiplier: {string.Join(", ", means.Select(m => m.ToString("0")))}");
    }

    [Test]
    public void Train_generate_and_judge_started_at_once_give_the_sequential_outputs()
    {
        string root = Path.Combine(_dir, "concurrent");
        using SteerChild train = SteerProcess.Start("experiment", "run", _file, "--stage", "train", "--out", root);
        using SteerChild generate = SteerProcess.Start("experiment", "run", _file, "--stage", "generate", "--out", root);
        // The judge stage runs here, with the test judge, polling for generations like the other two poll for vectors.
        RunSummary judged = new ExperimentRunner(_experiment, root, new MeasuringJudge()).Run("judge", Shard.All);
        Assert.That(train.WaitForExit(240_000) && generate.WaitForExit(240_000), Is.True);
        Assert.That((train.ExitCode, generate.ExitCode), Is.EqualTo((0, 0)));
        Assert.That(judged.Ok && judged.Finished == 8, Is.True);
        DemoStudy.AssertSameOutputs(root, _reference);
    }

    [Test]
    public void Training_killed_with_sigkill_and_restarted_takes_over_its_lock_and_repeats_no_epoch()
    {
        string root = Path.Combine(_dir, "killed");
        string metrics = Path.Combine(root, "vector", "happy_demo", "layer1", "evaluation_metrics.jsonl");
        using (SteerChild p = SteerProcess.Start("experiment", "run", _file, "--stage", "train", "--out", root))
        {
            var clock = Stopwatch.StartNew();
            // The training state is renamed into place after the epoch's vectors and metrics line: epoch 1 is then complete.
            string state = Path.Combine(root, "vector", "happy_demo", "layer1", "train_state_layer1.safetensors");
            while (!p.HasExited && !File.Exists(state) && clock.Elapsed < TimeSpan.FromMinutes(3))
                Thread.Sleep(10);
            Assert.That(p.HasExited, Is.False, "training finished before it could be killed");
            p.Kill(); // SIGKILL: the lock file stays behind
        }
        Assert.That(LockHolder.Read(metrics + ".lock"), Is.Not.Null, "the killed process's lock is left");
        int trainedBefore = File.ReadAllLines(metrics).Length;

        var log = new List<string>();
        RunSummary s = new ExperimentRunner(_experiment, root, new MeasuringJudge(), log.Add).Run("train", Shard.All);
        Assert.That(s.Ok, Is.True);
        Assert.That(trainedBefore, Is.GreaterThanOrEqualTo(1));
        // The restart trains only the epochs the killed run had not finished: one log line per epoch trained.
        Assert.That(log.Count(l => l.StartsWith("train demo layer1: epoch")), Is.EqualTo(2 - trainedBefore));
        Assert.That(File.ReadAllLines(metrics), Has.Length.EqualTo(2));

        new ExperimentRunner(_experiment, root, new MeasuringJudge()).Run("all", Shard.All);
        DemoStudy.AssertSameOutputs(root, _reference);
    }

    [Test]
    public void Two_generate_shards_merged_equal_the_unsharded_run()
    {
        // Each machine starts from the trained vectors (the reference's).
        string trained = Path.Combine(_dir, "trained");
        foreach (string file in Directory.EnumerateFiles(Path.Combine(_reference, "vector"), "*", SearchOption.AllDirectories).Append(Path.Combine(_reference, "config.json")))
        {
            string to = Path.Combine(trained, Path.GetRelativePath(_reference, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        var shardRoots = new List<string>();
        for (int k = 0; k < 2; k++)
        {
            string root = Path.Combine(_dir, $"shard{k}");
            ExperimentMerge.Merge(root, [trained]);
            RunSummary s = new ExperimentRunner(_experiment, root).Run("generate", new Shard(k, 2));
            Assert.That(s.Finished, Is.EqualTo(2), "half of the four generate items");
            shardRoots.Add(root);
        }
        string merged = Path.Combine(_dir, "merged");
        ExperimentMerge.Merge(merged, [trained, .. shardRoots]);
        foreach (string generations in Directory.EnumerateFiles(Path.Combine(_reference, "vector_evals"), "generations_*.jsonl", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(_reference, generations);
            Assert.That(File.ReadAllBytes(Path.Combine(merged, rel)), Is.EqualTo(File.ReadAllBytes(generations)), rel);
        }
        File.AppendAllText(Path.Combine(shardRoots[1], "vector_evals", "demo", "layer1", "generations_ep2.jsonl"), "{}\n");
        Assert.That(() => ExperimentMerge.Merge(merged, [shardRoots[1]]), Throws.TypeOf<InvalidDataException>().With.Message.Contains("differs"));
    }

    [Test]
    public void Judge_provider_down_fails_the_item_keeps_its_verdicts_and_the_rerun_judges_only_the_rest()
    {
        string root = Path.Combine(_dir, "judge-down");
        ExperimentMerge.Merge(root, [_reference]);
        foreach (string scores in Directory.EnumerateFiles(root, "*_scores_*.jsonl", SearchOption.AllDirectories)) File.Delete(scores);

        var down = new MeasuringJudge(failAfter: 90);
        RunSummary failed = new ExperimentRunner(_experiment, root, down).Run("judge", Shard.All);
        Assert.That(failed.Ok, Is.False);
        Assert.That(failed.Finished, Is.EqualTo(2), "two items of 40 samples fit in 90 verdicts");
        Assert.That(failed.Failed, Has.Count.EqualTo(6));
        Assert.That(failed.Failed[0], Does.Contain("judge provider down: connection refused"));
        var status = ExperimentStatus.Of(_experiment, root).Where(r => r.Stage == "judge").ToList();
        Assert.That(status.Count(r => r.State == "failed"), Is.EqualTo(6));
        Assert.That(status.First(r => r.State == "failed").Detail, Does.Contain("connection refused"));

        var up = new MeasuringJudge();
        RunSummary rerun = new ExperimentRunner(_experiment, root, up).Run("judge", Shard.All);
        Assert.That(rerun.Ok && rerun.Finished == 6, Is.True);
        Assert.That(up.Verdicts, Is.EqualTo(8 * 40 - 90), "only the samples not yet judged are sent again");
        DemoStudy.AssertSameOutputs(root, _reference);
    }

    /// <summary>A copy of the reference tree with its scores removed and a study file whose judge is <paramref name="judge"/>.</summary>
    (string Root, Experiment Experiment) Unjudged(string name, string judge, string? judgeExtra = null)
    {
        string dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        string file = DemoStudy.Write(dir, judgeProvider: judge);
        if (judgeExtra is not null) File.WriteAllText(file, File.ReadAllText(file).Replace("  tasks:\n", judgeExtra + "\n  tasks:\n"));
        string root = Path.Combine(dir, "out");
        ExperimentMerge.Merge(root, [_reference]);
        foreach (string scores in Directory.EnumerateFiles(root, "*_scores_*.jsonl", SearchOption.AllDirectories)) File.Delete(scores);
        File.Delete(Path.Combine(root, "config.json")); // the judge differs from the reference's
        return (root, Experiment.Load(file));
    }

    [Test]
    public void Judge_stage_runs_the_judging_library_with_a_local_model()
    {
        // The demo model stands in as a local judge: the wiring is what is tested, not the judge's skill.
        var (root, experiment) = Unjudged("local-judge", "local:" + Repo.Path("models", "demo"));
        RunSummary s = new ExperimentRunner(experiment, root).Run("judge", new Shard(0, 8));
        Assert.That(s.Ok && s.Finished == 1, Is.True, string.Join("; ", s.Failed));
        var records = SteerEngine.Experiments.Stages.JsonlRecords.Read(Path.Combine(root, "vector_evals", "demo", "layer1", "happy_scores_ep1.jsonl"));
        Assert.That(records, Has.Count.EqualTo(40));
        foreach (var r in records)
        {
            Assert.That(r.GetProperty("task").GetString(), Is.EqualTo("happy"));
            Assert.That(r.TryGetProperty("raw", out _), Is.True);
            var score = r.GetProperty("score");
            Assert.That(score.ValueKind == System.Text.Json.JsonValueKind.Null || score.GetDouble() is >= 0 and <= 100, Is.True, score.GetRawText());
        }
    }

    [TestCase(false, "judge provider 'openai': ")]
    [TestCase(true, "judge provider 'openai' (Batch API at http://127.0.0.1:")]
    public void Judge_provider_that_is_down_fails_its_items_with_a_clear_message_and_loses_nothing(bool batch, string message)
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0)) { probe.Start(); port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port; }
        Environment.SetEnvironmentVariable("STEER_TEST_JUDGE_KEY", "test-key");
        var (root, experiment) = Unjudged(batch ? "batch-refused" : "judge-refused", "openai",
            $"  model: judge\n  base_url: http://127.0.0.1:{port}/v1\n  api_key_env: STEER_TEST_JUDGE_KEY\n  max_attempts: 2\n  batch: {(batch ? "true" : "false")}");
        var before = DemoStudy.Outputs(root);
        RunSummary s = new ExperimentRunner(experiment, root).Run("judge", new Shard(0, 8));
        Assert.That(s.Ok, Is.False);
        Assert.That(s.Failed.Single(), Does.Contain(message));
        Assert.That(DemoStudy.Outputs(root), Is.EqualTo(before), "generations and vectors untouched, no scores file passed off as complete");
        var (code, _, err) = SteerCli.Run("experiment", "run", experiment.File, "--out", root, "--stage", "judge", "--shard", "0/8");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("error: judge demo layer1 ep1 happy: " + message));
    }

    [Test]
    [CancelAfter(240_000)]
    public void Judge_stage_through_the_batch_api_killed_after_submitting_resumes_the_same_batch_and_matches_live_calls()
    {
        Environment.SetEnvironmentVariable("STEER_TEST_JUDGE_KEY", "test-key");
        using var serve = Serving.ServeProcess.Start("--model", Repo.Path("models", "judge"), "--model-name", "judge", "--port", "0",
            "--data-dir", Path.Combine(_dir, "serve-data"), "--max-batch", "8");
        string judge = $"  model: judge\n  base_url: {serve.BaseAddress}v1\n  api_key_env: STEER_TEST_JUDGE_KEY";
        var (liveRoot, live) = Unjudged("judge-live", "openai", judge);
        RunSummary liveRun = new ExperimentRunner(live, liveRoot).Run("judge", new Shard(0, 8));
        Assert.That(liveRun.Ok && liveRun.Finished == 1, Is.True, string.Join("; ", liveRun.Failed));

        var (root, batched) = Unjudged("judge-batch", "openai", judge + "\n  batch: true\n  poll_seconds: 0.1");
        string output = Path.Combine(root, "vector_evals", "demo", "layer1", "happy_scores_ep1.jsonl");
        string state = Path.Combine(SteerEngine.Experiments.Stages.BatchApiJudge.RecordsPath(output) + ".batch", "state.json");
        using (SteerChild p = SteerProcess.Start("experiment", "run", batched.File, "--out", root, "--stage", "judge", "--shard", "0/8"))
        {
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && !(File.Exists(state) && File.ReadAllText(state).Contains("\"batch_id\": \"")) && clock.Elapsed < TimeSpan.FromSeconds(90))
                Thread.Sleep(5);
            Assert.That(p.HasExited, Is.False, "the judge stage ended before its batch could be killed");
            p.Kill(); // SIGKILL right after the batch id is saved
        }
        Assert.That(File.Exists(output), Is.False, "killed before the scores were written");

        RunSummary resumed = new ExperimentRunner(batched, root).Run("judge", new Shard(0, 8));
        Assert.That(resumed.Ok && resumed.Finished == 1, Is.True, string.Join("; ", resumed.Failed));
        using var batches = JsonDocument.Parse(serve.Http.GetStringAsync("/v1/batches").Result);
        Assert.That(batches.RootElement.GetProperty("data").GetArrayLength(), Is.EqualTo(1), "the restart polled the batch it had submitted, and submitted none");
        Assert.That(File.Exists(SteerEngine.Experiments.Stages.BatchApiJudge.RecordsPath(output)) || File.Exists(state), Is.False, "the batch's work files are removed");

        var expected = JsonlRecords.Read(Path.Combine(liveRoot, "vector_evals", "demo", "layer1", "happy_scores_ep1.jsonl"));
        var actual = JsonlRecords.Read(output);
        Assert.That(actual.Select(r => r.GetProperty("id").GetString()), Is.EqualTo(expected.Select(r => r.GetProperty("id").GetString())));
        Assert.That(expected, Has.Count.EqualTo(40));
        for (int i = 0; i < expected.Count; i++)
            Assert.That(actual[i].GetProperty("score").GetDouble(), Is.EqualTo(expected[i].GetProperty("score").GetDouble()).Within(1e-9), actual[i].GetProperty("id").GetString());
    }

    [Test]
    public void Cli_errors_are_one_line_and_leave_the_outputs_alone()
    {
        string root = Path.Combine(_dir, "cli-errors");
        ExperimentMerge.Merge(root, [_reference]);
        var before = DemoStudy.Outputs(root);

        string broken = Path.Combine(_dir, "broken.yaml");
        File.WriteAllText(broken, File.ReadAllText(_file).Replace("  samples: 2", "  samples: two"));
        var (code, _, err) = SteerCli.Run("experiment", "run", broken, "--out", root);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Match(@"^error: .*broken\.yaml:14: generate\.samples: 'two' is not a whole number ≥ 1$"));

        string noData = Path.Combine(_dir, "no-data.yaml");
        File.WriteAllText(noData, File.ReadAllText(_file).Replace("train: pairs.jsonl", "train: missing.jsonl"));
        (code, _, err) = SteerCli.Run("experiment", "run", noData, "--out", root);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Match(@"^error: .*no-data\.yaml:8: data\.train: .*missing\.jsonl: file not found$"));

        (code, _, err) = SteerCli.Run("experiment", "run", _file, "--out", root, "--stage", "judge");
        Assert.That(code, Is.EqualTo(0), "every judge item is already done, so no judge is needed");
        DemoStudy.AssertSameOutputs(root, _reference);
        Assert.That(DemoStudy.Outputs(root).Keys, Is.EqualTo(before.Keys));
    }
}
