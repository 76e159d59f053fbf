using System.Diagnostics;
using SteerEngine.Cli.Demo;
using SteerEngine.Experiments;
using SteerEngine.Experiments.Stages;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>
/// A small study on the demo model for the experiment tests: BiPO on 16 mood pairs at layers 1 and 2, 2 epochs,
/// 5 multipliers × 4 questions × 2 samples of 16 tokens. A few seconds of training per layer.
/// </summary>
public static class DemoStudy
{
    public static string Write(string dir, string? extra = null, string judgeProvider = "local:/nonexistent/judge-model")
    {
        string data = Path.Combine(dir, "pairs.jsonl");
        File.WriteAllLines(data, File.ReadLines(Repo.Path("examples", "demo-experiment", "mood_train.jsonl")).Take(16));
        File.WriteAllText(Path.Combine(dir, "rubric.json"), "{\"kind\": \"weighted\", \"prompt\": \"rate the mood of this answer from 0 (sad) to 100 (happy).\\nquestion: {question}\\nanswer: {answer}\"}");
        string file = Path.Combine(dir, "study.yaml");
        File.WriteAllText(file, $$"""
            name: test-study
            output: out
            behavior: happy
            models:
              - name: demo
                path: {{Repo.Path("models", "demo")}}
            data:
              train: pairs.jsonl
            layers: [1, 2]
            bipo: {epochs: 2, lr: 0.1, beta: 0.1, batch_size: 4, warmup: 2, seed: 11}
            generate:
              questions: {{Repo.Path("examples", "demo-experiment", "questions.jsonl")}}
              multipliers: [-4, -2, 0, 2, 4]
              samples: 2
              max_new_tokens: 16
              temperature: 1.0
              seed: 1
            judge:
              provider: {{judgeProvider}}
              tasks:
                - {name: happy, rubric: rubric.json, scorer: logprob}
                - {name: coherence, rubric: rubric.json, scorer: logprob}
            locks: {heartbeat_seconds: 0.2, stale_seconds: 5, poll_seconds: 0.1}
            {{extra ?? ""}}
            """);
        return file;
    }

    /// <summary>
    /// Every finished output of a tree (relative path → bytes), without work in progress, locks, failure notes and a
    /// batch judge's state; a temporary file left behind counts, so a leftover shows up as a difference.
    /// </summary>
    public static SortedDictionary<string, byte[]> Outputs(string root)
    {
        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string top in new[] { "vector", "vector_evals" })
            if (Directory.Exists(Path.Combine(root, top)))
                foreach (string f in Directory.EnumerateFiles(Path.Combine(root, top), "*", SearchOption.AllDirectories))
                    if (!ExperimentLayout.IsWorkFile(Path.GetRelativePath(root, f)) || f.EndsWith(".tmp") || f.EndsWith(".takeover"))
                        files[Path.GetRelativePath(root, f)] = File.ReadAllBytes(f);
        return files;
    }

    public static void AssertSameOutputs(string actualRoot, string expectedRoot)
    {
        var expected = Outputs(expectedRoot);
        var actual = Outputs(actualRoot);
        Assert.That(actual.Keys, Is.EqualTo(expected.Keys), "the same files");
        foreach (var (path, bytes) in expected)
            Assert.That(actual[path].AsSpan().SequenceEqual(bytes), $"{path} differs");
    }
}

/// <summary>
/// A judge for tests only, computed without a model: the demo language's exact measures — "happy" is 100 × the happy
/// share of the mood words (no score when there are none), "coherence" 100 × the well-formed share of the sentences.
/// It can be told to go down after a number of verdicts, as a provider that stops answering would.
/// </summary>
public sealed class MeasuringJudge(int failAfter = int.MaxValue) : IJudge, IJudgeFactory
{
    static readonly DemoLanguage Language = DemoLanguage.Load(Repo.Path("models", "demo", "lexicon.json"));
    int _verdicts;

    public int Verdicts => _verdicts;

    public IJudge Create(JudgeSettings settings) => this;

    public IEnumerable<JudgeVerdict> Score(JudgeTask task, IReadOnlyList<JudgeSample> samples, string output)
    {
        foreach (JudgeSample s in samples)
        {
            if (_verdicts >= failAfter) throw new JudgeUnavailableException("judge provider down: connection refused (test)");
            Interlocked.Increment(ref _verdicts);
            DemoMeasure m = Language.Measure(s.Response);
            double? score = task.Name == "coherence" ? 100 * m.Coherence : m.Rates["mood"] is double r ? 100 * r : null;
            yield return new JudgeVerdict(s.Id, score, null, score?.ToString("R") ?? "no mood words");
        }
    }

    public void Dispose() { }
}
