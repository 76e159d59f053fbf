using System.Text.Json;
using SteerEngine.Capture;
using SteerEngine.Cli.Demo;
using SteerEngine.Experiments;
using SteerEngine.Generation.Jobs;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>
/// An experiment whose steering term carries a CAST condition, on the demo model: the animal-vs-place condition of
/// <see cref="ConditionalSteeringTests"/> switches an extracted mood vector on for the animal questions only, each
/// record says what the condition decided; and the output folder's config.json records the whole term, so a changed
/// op, hook or condition vector is a different experiment.
/// </summary>
[NonParallelizable]
public class ConditionedStudyTests
{
    static string Study(string dir, string term, string questions)
    {
        string file = Path.Combine(dir, "study.yaml");
        File.WriteAllText(file, $$"""
            name: conditioned-study
            output: out
            behavior: happy
            models:
              - name: demo
                path: {{Repo.Path("models", "demo")}}
            extract:
              positive: {{Repo.Path("examples", "demo-extraction", "mood_pos.csv")}}
              negative: {{Repo.Path("examples", "demo-extraction", "mood_neg.csv")}}
              trait: mood
            layers: [1]
            generate:
              questions: {{questions}}
              multipliers: [0, 4]
              samples: 1
              max_new_tokens: 30
              temperature: 1.0
              seed: 1
            {{term}}
            locks: {heartbeat_seconds: 0.2, stale_seconds: 5, poll_seconds: 0.1}
            """);
        return file;
    }

    [Test]
    public void A_conditioned_study_steers_only_the_questions_that_meet_its_condition_and_its_records_carry_the_decision()
    {
        DemoFiles.RequireModel();
        string dir = TestModels.TempDir("conditioned-study");
        var (animals, places) = ConditionalSteeringTests.TopicSets(ConditionalSteeringTests.Forms);
        ConditionSplit best;
        using (var lm = SteerEngine.Model.LanguageModel.Load(DemoFiles.ModelDir))
        {
            ConditionSearchResult search = ConditionSearch.Run(lm.Model, animals.Select(q => lm.EncodePrompt(q)).ToList(), places.Select(q => lm.EncodePrompt(q)).ToList());
            best = search.Best;
            VectorFile.Write(Path.Combine(dir, "animals.safetensors"), SteeringVector.PerLayerSet(search.Vectors));
        }
        string questions = Path.Combine(dir, "questions.jsonl");
        File.WriteAllLines(questions, animals.Select((q, i) => JsonSerializer.Serialize(new { id = $"animal{i}", question = q }))
            .Concat(places.Select((q, i) => JsonSerializer.Serialize(new { id = $"place{i}", question = q }))));
        string threshold = best.Threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        string file = Study(dir, $"  positions: response\n  condition: {{vector: animals.safetensors, layer: {best.Layer}, threshold: {threshold}, comparator: {best.ComparatorName}}}", questions);

        string root = Path.Combine(dir, "out");
        RunSummary s = new ExperimentRunner(Experiment.Load(file), root).Run("all", Shard.All);
        Assert.That(s.Ok, Is.True, string.Join("; ", s.Failed.Concat(s.Blocked)));

        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        var records = File.ReadLines(Path.Combine(root, "vector_evals", "demo", "layer1", "generations_ep1.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(records, Has.Count.EqualTo(2 * (animals.Count + places.Count)));
        foreach (JsonElement r in records)
        {
            JsonElement c = r.GetProperty("condition");
            Assert.That((c.GetProperty("vector").GetString(), c.GetProperty("layer").GetInt32(), c.GetProperty("threshold").GetSingle(), c.GetProperty("comparator").GetString()),
                Is.EqualTo(("animals", best.Layer, best.Threshold, best.ComparatorName)));
            Assert.That(c.GetProperty("score").ValueKind, Is.EqualTo(JsonValueKind.Number));
            Assert.That(r.GetProperty("positions").GetString(), Is.EqualTo("response"));
        }
        // Decided per question from its prompt: the same at both multipliers.
        var met = records.GroupBy(r => r.GetProperty("prompt_id").GetString()!)
            .ToDictionary(g => g.Key, g => g.Select(r => r.GetProperty("condition").GetProperty("met").GetBoolean()).Distinct().Single());
        (double Happy, double Met) Measure(string topic, double multiplier)
        {
            var rows = records.Where(r => r.GetProperty("prompt_id").GetString()!.StartsWith(topic) && r.GetProperty("multiplier").GetDouble() == multiplier).ToList();
            return (ConditionalSteeringTests.HappyShare(language, rows.Select(r => r.GetProperty("response").GetString()!)),
                rows.Count(r => met[r.GetProperty("prompt_id").GetString()!]) / (double)rows.Count);
        }
        var (animalsBase, animalsMet) = Measure("animal", 0);
        var (animalsSteered, _) = Measure("animal", 4);
        var (placesBase, placesMet) = Measure("place", 0);
        var (placesSteered, _) = Measure("place", 4);
        ConditionalSteeringTests.AssertSteersAnimalsOnly("at multiplier 0 → 4", (animalsBase, animalsSteered, animalsMet), (placesBase, placesSteered, placesMet));
    }

    /// <summary>What a run of <paramref name="file"/> into <paramref name="root"/> says when it refuses the folder (the generate stage, which has no vectors yet to wait for).</summary>
    static string Refusal(string file, string root) =>
        Assert.Throws<InvalidDataException>(() => new ExperimentRunner(Experiment.Load(file), root).Run("generate", Shard.All, wait: false))!.Message;

    static void Edit(string file, string from, string to) => File.WriteAllText(file, File.ReadAllText(file).Replace(from, to));

    [Test]
    public void Changing_the_op_its_parameters_the_hook_or_the_condition_vector_makes_the_output_folder_a_different_experiment()
    {
        string dir = TestModels.TempDir("experiment-term-config");
        string condition = Path.Combine(dir, "topic.npy");
        VectorFile.Write(condition, SteeringVector.Direction([.. Enumerable.Range(0, 128).Select(i => MathF.Sin(i))]));
        string file = DemoStudy.Write(dir);
        string root = Path.Combine(dir, "out");
        Assert.That(new ExperimentRunner(Experiment.Load(file), root).Run("generate", Shard.All, wait: false).Finished, Is.Zero);

        Edit(file, "  samples: 2", "  samples: 2\n  op: cap\n  hi: 0.5");
        Assert.That(Refusal(file, root), Does.Contain("the output folder holds a different experiment (generate.op: \"cap\" in study.yaml, absent from the folder's config.json)"));
        string capped = Path.Combine(dir, "capped");
        new ExperimentRunner(Experiment.Load(file), capped).Run("generate", Shard.All, wait: false);
        Edit(file, "hi: 0.5", "hi: 1");
        Assert.That(Refusal(file, capped), Does.Contain("(generate.hi: 1 in study.yaml, 0.5 in the folder's config.json)"));
        Edit(file, "  op: cap\n  hi: 1", "  op: add");
        Assert.That(new ExperimentRunner(Experiment.Load(file), root).Run("generate", Shard.All, wait: false).Finished, Is.Zero, "op: add written out is the default term");

        Edit(file, "  op: add", "  hook: resid_mid");
        Assert.That(Refusal(file, root), Does.Contain("(generate.hook: \"resid_mid\" in study.yaml, absent from the folder's config.json)"));
        Edit(file, "  hook: resid_mid", "  hook: attn_z");
        string atZ = Path.Combine(dir, "attn-z");
        new ExperimentRunner(Experiment.Load(file), atZ).Run("generate", Shard.All, wait: false);
        Edit(file, "  hook: attn_z", "  hook: blocks.1.hook_resid_mid");
        Assert.That(LoadError(file), Does.Contain("generate.hook: 'blocks.1.hook_resid_mid' names block 1, but the study steers layers 1, 2"));
        Edit(file, "  hook: blocks.1.hook_resid_mid", "  hook: resid_post");
        Assert.That(Refusal(file, atZ), Does.Contain("(generate.hook: absent from study.yaml, \"attn_z\" in the folder's config.json)"));

        Edit(file, "  hook: resid_post", "  condition: {vector: topic.npy, layer: 0, threshold: 0.1}");
        string conditioned = Path.Combine(dir, "conditioned");
        new ExperimentRunner(Experiment.Load(file), conditioned).Run("generate", Shard.All, wait: false);
        Assert.That(File.ReadAllText(Path.Combine(conditioned, "config.json")), Does.Contain(condition).And.Contain("\"vector_sha256\""));
        new ExperimentRunner(Experiment.Load(file), conditioned).Run("generate", Shard.All, wait: false);
        VectorFile.Write(condition, SteeringVector.Direction([.. Enumerable.Range(0, 128).Select(i => MathF.Cos(i))]));
        Assert.That(Refusal(file, conditioned), Does.Contain("(generate.condition.vector_sha256: "), "the same file with other values");
        Edit(file, "threshold: 0.1}", "threshold: 0.1, comparator: less}");
        Assert.That(Refusal(file, conditioned), Does.Contain("generate.condition."));
    }

    static string LoadError(string file) => Assert.Throws<InvalidDataException>(() => Experiment.Load(file))!.Message;

    [Test]
    public void A_plain_add_study_resolves_to_the_generate_keys_older_versions_wrote()
    {
        // The keys (and so the bytes) of config.json's generate before the term was recorded: folders of plain-add studies stay valid.
        string[] before = ["questions", "question_field", "id_field", "system", "multipliers", "samples", "max_new_tokens", "temperature", "top_p", "top_k",
                           "min_p", "repetition_penalty", "seed", "positions", "logprobs"];
        string file = DemoStudy.Write(TestModels.TempDir("experiment-plain-config"));
        using var config = JsonDocument.Parse(ExperimentRunner.ResolvedJson(Experiment.Load(file)));
        Assert.That(config.RootElement.GetProperty("generate").EnumerateObject().Select(p => p.Name), Is.EqualTo(before));
        Edit(file, "  samples: 2", "  samples: 2\n  positions: first_k\n  k: 3\n  op: set\n  value: -2\n  hook: attn_z");
        using var term = JsonDocument.Parse(ExperimentRunner.ResolvedJson(Experiment.Load(file)));
        Assert.That(term.RootElement.GetProperty("generate").EnumerateObject().Select(p => p.Name), Is.EqualTo(before.Concat(["k", "op", "value", "hook"])));
    }
}
