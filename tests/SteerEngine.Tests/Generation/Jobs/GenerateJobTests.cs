using System.Diagnostics;
using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation.Jobs;

/// <summary>Sweep jobs: resumable after a kill, shardable, every record complete.</summary>
[TestFixture, NonParallelizable]
public class GenerateJobTests
{
    static LanguageModel _lm = null!;
    static string _vector = null!;

    [OneTimeSetUp]
    public void Load()
    {
        _lm = LanguageModel.Load(TestModels.Get("tiny"));
        _vector = Path.Combine(TestModels.TempDir("job"), "vec_ep3_layer2.npy");
        VectorFile.Write(_vector, SteeringVector.Direction(Compare.RandomVector(new Random(1), 128, 3f)));
    }

    [OneTimeTearDown]
    public void Unload() => _lm.Dispose();

    static GenerateJobSpec Spec(Shard? shard = null) => new()
    {
        Prompts = Enumerable.Range(0, 4).Select(i => new JobPrompt($"p{i}", $"Question number {i}?")).ToList(),
        Vectors = [SweepVector.FromFile(_vector)],
        Layers = [1, 2],
        Multipliers = [-2f, 0f, 2f],
        SamplesPerPrompt = 2,
        MaxNewTokens = 4,
        Sampling = new SamplingOptions(0.8f, 0.95f),
        Seed = 7,
        Shard = shard ?? Shard.All,
        Scheduler = new SchedulerOptions(MaxSequences: 5, MaxTokensPerStep: 64),
    };

    /// <summary>Records as comparable text, without the one field that names the shard.</summary>
    static List<string> Records(string path) => File.ReadAllLines(path)
        .Select(l => { var o = JsonNode.Parse(l)!.AsObject(); o.Remove("shard"); return o.ToJsonString(); })
        .OrderBy(s => s, StringComparer.Ordinal).ToList();

    [Test]
    public void A_job_writes_one_complete_record_per_item()
    {
        string path = Path.Combine(TestModels.TempDir("job"), "out.jsonl");
        JobSummary s = GenerateJob.Run(_lm, Spec(), path, resume: false);
        Assert.That(s.Written, Is.EqualTo(4 * 2 * 3 * 2));
        var first = JsonNode.Parse(File.ReadLines(path).First())!.AsObject();
        foreach (string field in new[] { "id", "prompt_id", "question", "response", "layer", "multiplier", "vector", "epoch", "sample_index",
                     "seed", "prompt_tokens", "completion_tokens", "finish_reason", "steering_layer", "steering_strength", "answer_idx" })
            Assert.That(first.ContainsKey(field), field);
        Assert.That(first["epoch"]!.GetValue<int>(), Is.EqualTo(3));
        Assert.That(File.ReadLines(path).Select(l => JsonNode.Parse(l)!["id"]!.GetValue<string>()).Distinct().Count(), Is.EqualTo(48));
    }

    [Test]
    public void An_existing_output_is_never_overwritten_without_resume()
    {
        string path = Path.Combine(TestModels.TempDir("job"), "out.jsonl");
        File.WriteAllText(path, "{\"id\":\"x\"}\n");
        Assert.That(() => GenerateJob.Run(_lm, Spec(), path, resume: false), Throws.TypeOf<IOException>().With.Message.Contains("--resume"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("{\"id\":\"x\"}\n"));
    }

    [Test]
    public void Resuming_after_a_torn_last_line_gives_exactly_the_uninterrupted_records()
    {
        string dir = TestModels.TempDir("job");
        string full = Path.Combine(dir, "full.jsonl"), cut = Path.Combine(dir, "cut.jsonl");
        GenerateJob.Run(_lm, Spec(), full, resume: false);
        string[] lines = File.ReadAllLines(full);
        File.WriteAllText(cut, string.Join("\n", lines[..10]) + "\n" + lines[10][..(lines[10].Length / 2)]);
        JobSummary s = GenerateJob.Run(_lm, Spec(), cut, resume: true);
        Assert.That(s.Skipped, Is.EqualTo(10));
        Assert.That(Records(cut), Is.EqualTo(Records(full)));
    }

    [Test]
    public void Shards_merged_equal_the_unsharded_run()
    {
        string dir = TestModels.TempDir("job");
        string full = Path.Combine(dir, "full.jsonl");
        GenerateJob.Run(_lm, Spec(), full, resume: false);
        var shards = Enumerable.Range(0, 3).Select(k => Path.Combine(dir, $"shard{k}.jsonl")).ToList();
        for (int k = 0; k < 3; k++) GenerateJob.Run(_lm, Spec(new Shard(k, 3)), shards[k], resume: false);
        string merged = Path.Combine(dir, "merged.jsonl");
        Assert.That(GenerateJob.Merge(shards, merged, expected: 48), Is.EqualTo(48));
        Assert.That(Records(merged), Is.EqualTo(Records(full)));
        Assert.That(() => GenerateJob.Merge(shards.Take(2).ToList(), Path.Combine(dir, "m2.jsonl"), expected: 48),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("missing"));
        Assert.That(() => GenerateJob.Merge([shards[0], shards[0]], Path.Combine(dir, "m3.jsonl")),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("more than one place"));
    }

    [Test]
    public void Resume_after_kill_9_of_the_steer_process_loses_no_record()
    {
        string dir = TestModels.TempDir("job");
        string prompts = Path.Combine(dir, "prompts.jsonl");
        File.WriteAllLines(prompts, Enumerable.Range(0, 6).Select(i => $"{{\"id\": \"q{i}\", \"question\": \"Tell me about {i}.\"}}"));
        string[] args = ["generate", "--model", TestModels.Get("tiny"), "--prompts", prompts, "--vector", _vector, "--layers", "1,2",
            "--multipliers", "-1:1:1", "--samples-per-prompt", "3", "--max-new-tokens", "5", "--temperature", "0.7", "--seed", "3", "--max-batch", "4"];
        string full = Path.Combine(dir, "full.jsonl"), killed = Path.Combine(dir, "killed.jsonl");

        // The uninterrupted run computes every prompt row by row; the killed and resumed one shares the samples' prefixes.
        using (SteerChild p = SteerProcess.Start([.. args, "--out", full, "--no-prefix-sharing"])) Assert.That(p.WaitForExit(300_000), Is.True);
        using (SteerChild p = SteerProcess.Start([.. args, "--out", killed]))
        {
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && (!File.Exists(killed) || new FileInfo(killed).Length == 0) && clock.Elapsed < TimeSpan.FromMinutes(3))
                Thread.Sleep(20);
            Assert.That(p.HasExited, Is.False, "the job finished before it could be killed");
            p.Kill(); // SIGKILL: no flush, no cleanup
        }
        int before = File.ReadAllLines(killed).Length;
        Assert.That(before, Is.LessThan(108), "killed mid-job");
        using (SteerChild p = SteerProcess.Start([.. args, "--out", killed, "--resume"])) { Assert.That(p.WaitForExit(300_000), Is.True, "the resumed job still runs"); Assert.That(p.ExitCode, Is.EqualTo(0)); }
        Assert.That(Records(killed), Is.EqualTo(Records(full)));
        Assert.That(Records(full), Has.Count.EqualTo(6 * 2 * 3 * 3));
    }
}
