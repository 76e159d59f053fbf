using System.Globalization;
using SteerEngine.Cli.Demo;
using SteerEngine.Experiments.Persona;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Judging;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Persona;

/// <summary>
/// `steer persona run` for the demo model's mood trait, from a trait file the test writes: the engine answers, a
/// judge scores (a local server speaking the OpenAI wire format whose 0-100 replies are the demo language's own
/// measures, given as top log-probs), extract builds the vector, and steering with it raises the measured happy
/// share. The run is stopped after the pos step and resumed.
/// </summary>
[NonParallelizable]
public class PersonaRunTests
{
    public const string MoodPrompt = "rate the mood of this answer from 0 (sad) to 100 (happy).\nquestion: {question}\nanswer: {answer}";
    public const string CoherencePrompt = "rate the coherence of this answer from 0 (broken) to 100 (well formed).\nquestion: {question}\nanswer: {answer}";

    /// <summary>The mood trait in the persona-vectors layout: the system prompts the demo model was trained on, 40 distinct demo questions.</summary>
    public static TraitDefinition MoodTrait()
    {
        string[] nouns = ["dog", "cat", "garden", "city", "friend", "teacher", "river", "house", "child", "bird"];
        var questions = nouns.SelectMany(n => new[] { $"tell me about the {n}.", $"tell me about your {n}." })
            .Concat(nouns.SelectMany(n => new[] { $"what do you think of the {n}?", $"describe your {n}." })).ToList();
        InstructionPair[] pairs =
        [
            new("answer in a happy mood.", "answer in a sad mood."),
            new("answer in a happy mood and formally.", "answer in a sad mood and formally."),
            new("answer in a happy mood and casually.", "answer in a sad mood and casually."),
            new("answer in a happy mood.", "answer in a sad mood."),
            new("answer in a happy mood and formally.", "answer in a sad mood and casually."),
        ];
        return new TraitDefinition(pairs, questions, MoodPrompt);
    }

    /// <summary>A temporary directory with the mood trait's splits and a mean-difference mood vector of the demo pairs at <paramref name="layer"/>.</summary>
    public static (string Dir, string VectorPath) MoodTraitAndVector(string study, int layer)
    {
        DemoFiles.RequireModel();
        string dir = Directory.CreateTempSubdirectory($"steer-persona-{study}-").FullName;
        MoodTrait().WriteSplits(dir, "mood");
        string vectorPath = Path.Combine(dir, "mood.pt");
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir);
        VectorFile.Write(vectorPath, SteeringVector.Direction(TraitVector.MeanDifference(lm, TraitVector.ReadPairs(Path.Combine(DemoFiles.ModelDir, "mood_pairs.jsonl")), layer)));
        return (dir, vectorPath);
    }

    public const string PairwisePrompt = "which answer is happier, a or b?\nquestion: {question}\na: {answer_a}\nb: {answer_b}";

    /// <summary>
    /// A judge that measures: mood = happy share × 100 (50 when the answer has no mood word), coherence = well-formed
    /// share × 100, pairwise = the answer with the larger happy share ("a" on a tie).
    /// </summary>
    public static FakeJudgeServer MeasuringJudge(DemoLanguage language) => new((prompt, _) =>
    {
        double Happy(string text) => language.Measure(text).Rates["mood"] ?? 0.5;
        if (prompt.StartsWith("which answer is happier", StringComparison.Ordinal))
        {
            int a = prompt.IndexOf("\na: ", StringComparison.Ordinal), b = prompt.IndexOf("\nb: ", StringComparison.Ordinal);
            return new FakeReply.Text(Happy(prompt[(a + 4)..b]) >= Happy(prompt[(b + 4)..]) ? "a" : "b");
        }
        string answer = prompt[(prompt.IndexOf("\nanswer: ", StringComparison.Ordinal) + "\nanswer: ".Length)..];
        DemoMeasure m = language.Measure(answer);
        double score = prompt.StartsWith("rate the mood", StringComparison.Ordinal) ? 100 * (m.Rates["mood"] ?? 0.5) : 100 * m.Coherence;
        string token = Math.Round(score).ToString(CultureInfo.InvariantCulture);
        return new FakeReply.Text(token, [(token, 0.0)]);
    });

    [Test]
    [CancelAfter(300_000)]
    public void With_the_judge_model_persona_run_for_mood_makes_a_vector_that_steers_the_happy_share()
    {
        DemoFiles.RequireModel();
        string judgeDir = Repo.Path("models", "judge");
        if (!File.Exists(Path.Combine(judgeDir, "model.safetensors"))) Assert.Fail($"{judgeDir}: the judge model's weights are missing");
        string dir = Directory.CreateTempSubdirectory("steer-persona-judge-").FullName;
        MoodTrait().WriteSplits(dir, "mood");
        var (code, output, err) = SteerCli.Run("persona", "run", "--trait", "mood", "--dir", dir, "--model", DemoFiles.ModelDir, "--n-per-question", "2",
            "--max-new-tokens", "60", "--judge", "local:" + judgeDir, "--coherence-rubric", Path.Combine(judgeDir, "rubrics", "coherence_0_100.json"),
            "--max-concurrent", "32");
        Assert.That(code, Is.EqualTo(0), err);
        TestContext.Out.WriteLine(output);
        AssertSteersHappyShare(Path.Combine(dir, "vectors", "mood_response_avg_diff.pt"));
        Directory.Delete(dir, true);
    }

    /// <summary>The [layers+1, hidden] vector steered at the middle block raises the measured happy share: Spearman ρ ≥ 0.9 over the multipliers.</summary>
    static void AssertSteersHappyShare(string path)
    {
        SteeringVector vector = VectorFile.Read(path);
        using LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir);
        Assert.That((vector.Rows, vector.Hidden), Is.EqualTo((lm.Config.NumLayers + 1, lm.Config.HiddenSize)));
        int layer = (lm.Config.NumLayers - 1) / 2;
        float[] multipliers = [-4, -2, -1, 0, 1, 2, 4];
        var points = TraitSweep.Run(lm, DemoModel.Language(DemoFiles.ModelDir), "mood", vector.ForBlock(layer), layer, multipliers, TraitSweep.DefaultPrompts, 6, maxNewTokens: 40);
        double[] rates = points.Select(p => p.TraitRate).ToArray();
        string report = string.Join(", ", points.Select(p => $"{p.Multiplier}: {p.TraitRate:0.00}"));
        TestContext.Out.WriteLine("happy share by multiplier: " + report);
        Assert.That(SteeringSweep.SpearmanRho(multipliers.Select(m => (double)m).ToArray(), rates), Is.GreaterThanOrEqualTo(0.9), report);
        Assert.That(rates[^1] - rates[0], Is.GreaterThan(0.5), report);
    }

    [Test]
    [CancelAfter(300_000)]
    public void Persona_run_for_mood_makes_a_vector_that_steers_the_happy_share_and_resumes_after_a_stop()
    {
        DemoFiles.RequireModel();
        string dir = Directory.CreateTempSubdirectory("steer-persona-run-").FullName;
        MoodTrait().WriteSplits(dir, "mood");
        string coherence = Path.Combine(dir, "coherence.json");
        File.WriteAllText(coherence, $$"""{"name": "coherence_0_100", "kind": "weighted", "prompt": {{System.Text.Json.JsonSerializer.Serialize(CoherencePrompt)}}, "output_column": "coherence"}""");
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        using var judge = MeasuringJudge(language);
        Environment.SetEnvironmentVariable("STEER_TEST_KEY", "k");
        string[] Args(params string[] extra) =>
        [
            "persona", "run", "--trait", "mood", "--dir", dir, "--model", DemoFiles.ModelDir, "--n-per-question", "2", "--max-new-tokens", "60",
            "--judge", "openai", "--judge-model", "fake", "--judge-base-url", judge.BaseUrl, "--judge-api-key-env", "STEER_TEST_KEY",
            "--coherence-rubric", coherence, .. extra,
        ];

        var (code, _, err) = SteerCli.Run(Args("--until", "pos"));
        Assert.That(code, Is.EqualTo(0), err);
        var pos = PersonaFiles.For(dir, "mood", "pos");
        Assert.That(File.Exists(pos.Csv) && !File.Exists(PersonaFiles.For(dir, "mood", "neg").Answers), err);
        int afterPos = judge.Requests;
        Assert.That(afterPos, Is.EqualTo(5 * 20 * 2 * 2), "every pos answer judged for mood and coherence");
        string posAnswers = File.ReadAllText(pos.Answers);

        (code, string output, err) = SteerCli.Run(Args());
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("step new: trait files exist, skipped").And.Contain($"step pos: {pos.Csv} exists, skipped"));
        Assert.That(judge.Requests - afterPos, Is.EqualTo(5 * 20 * 2 * 2), "the resumed run judges only the neg answers");
        Assert.That(File.ReadAllText(pos.Answers), Is.EqualTo(posAnswers));
        Assert.That(output, Does.Contain("effective pairs:").And.Contain("best monitoring entry"));
        TestContext.Out.WriteLine(output);

        AssertSteersHappyShare(Path.Combine(dir, "vectors", "mood_response_avg_diff.pt"));
        Directory.Delete(dir, true);
    }
}
