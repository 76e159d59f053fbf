using System.Text.Json;
using SteerEngine.Experiments;
using SteerEngine.Experiments.Stages;
using SteerEngine.Generation.Jobs;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>
/// An experiment whose vectors come from an extract: recipe (the example's persona CSVs of happy and sad answers)
/// instead of BiPO: extracted, swept and judged by the local judge model on the demo model; and bad recipes refused.
/// </summary>
[NonParallelizable]
public class ExtractionStudyTests
{
    static string Csv(string side) => Repo.Path("examples", "demo-extraction", $"mood_{side}.csv");

    static string WriteStudy(string dir, string recipe)
    {
        string file = Path.Combine(dir, "study.yaml");
        File.WriteAllText(file, $$"""
            name: extraction-study
            output: out
            behavior: happy
            models:
              - name: demo
                path: {{Repo.Path("models", "demo")}}
            extract:
            {{recipe}}
            layers: [1, 2]
            generate:
              questions: {{Repo.Path("examples", "demo-experiment", "questions.jsonl")}}
              multipliers: [-2, -1, 0, 1, 2]
              samples: 2
              max_new_tokens: 16
              seed: 1
            judge:
              provider: local:{{Repo.Path("models", "judge")}}
              tasks:
                - {name: happy, rubric: {{Repo.Path("models", "judge", "rubrics", "mood_0_100.json")}}, scorer: logprob}
            locks: {heartbeat_seconds: 0.2, stale_seconds: 5, poll_seconds: 0.1}
            """);
        return file;
    }

    static string Recipe(string positive, string negative, string more = "") =>
        $"  positive: {positive}\n  negative: {negative}\n  trait: mood\n{more}";

    [Test]
    public void Extraction_study_extracts_generates_and_judges_and_its_trait_curve_rises_with_the_multiplier()
    {
        if (!File.Exists(Repo.Path("models", "judge", "model.safetensors")))
            Assert.Ignore("the judge model's weights are not in models/judge (models/judge/train.sh makes them)");
        string dir = TestModels.TempDir("extraction-study");
        Experiment experiment = Experiment.Load(WriteStudy(dir, Recipe(Csv("pos"), Csv("neg"))));
        Assert.That(experiment.Epochs, Is.EqualTo(1));
        string root = Path.Combine(dir, "out");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var log = new List<string>();
        foreach (string stage in new[] { "train", "generate", "judge" })
        {
            RunSummary s = new ExperimentRunner(experiment, root, log: l => log.Add($"{clock.Elapsed.TotalSeconds:0.0} {l}")).Run(stage, Shard.All);
            Assert.That(s.Ok && s.Finished == 2, Is.True, string.Join("; ", s.Failed.Concat(s.Blocked)));
        }
        TestContext.Out.WriteLine(string.Join("\n", log));

        // Layer L's vector is the mean difference at the output of block L: entry L+1 of what steer extract writes.
        string extracted = Path.Combine(dir, "extract");
        var (code, o, e) = SteerCli.Run("extract", "--model", Repo.Path("models", "demo"), "--mode", "persona", "--pos", Csv("pos"), "--neg", Csv("neg"),
            "--trait", "mood", "--out", extracted);
        Assert.That(code, Is.EqualTo(0), o + e);
        SteeringVector perLayer = VectorFile.Read(Path.Combine(extracted, "mood_response_avg_diff.pt"));
        foreach (int layer in new[] { 1, 2 })
        {
            string vectorDir = Path.Combine(root, "vector", "happy_demo", $"layer{layer}");
            SteeringVector v = VectorFile.Read(Path.Combine(vectorDir, $"vec_ep1_layer{layer}.pt"));
            Assert.That(v.PerLayer, Is.False);
            Assert.That(v.Row(0), Is.EqualTo(perLayer.Row(layer + 1)).Within(1e-5f), $"layer {layer}");
            using var info = JsonDocument.Parse(File.ReadAllText(Path.Combine(vectorDir, RecipeExtraction.InfoFileName)));
            Assert.That(info.RootElement.GetProperty("effective_pairs").GetInt32(), Is.EqualTo(48));
            Assert.That(Directory.EnumerateDirectories(vectorDir), Is.Empty, "no work folder left");
        }

        var data = SteerEngine.Experiments.Report.BipoStudyReader.Read(root);
        foreach (var layer in data.Scores.GroupBy(x => x.Condition.Candidate.Layer))
        {
            var curve = layer.GroupBy(x => x.Condition.Multiplier).OrderBy(g => g.Key).Select(g => g.Average(x => x.Score)).ToList();
            string text = string.Join(", ", curve.Select(m => m.ToString("0")));
            Assert.That(curve, Has.Count.EqualTo(5));
            Assert.That(curve[^1], Is.GreaterThan(curve[0] + 40), $"layer {layer.Key}: happy by multiplier {text}");
            for (int i = 1; i < curve.Count; i++) Assert.That(curve[i], Is.GreaterThan(curve[i - 1] - 10), $"layer {layer.Key}: the curve rises, {text}");
        }
    }

    static string LoadError(string recipe, Func<string, string>? edit = null)
    {
        string dir = TestModels.TempDir("extraction-file");
        string file = WriteStudy(dir, recipe);
        if (edit is not null) File.WriteAllText(file, edit(File.ReadAllText(file)));
        var e = Assert.Throws<InvalidDataException>(() => Experiment.Load(file))!;
        Assert.That(e.Message, Does.StartWith(file + ":"), "names the file");
        return e.Message;
    }

    static string CsvCopy(string name, Func<string, string> edit)
    {
        string path = Path.Combine(TestModels.TempDir("extraction-csv"), name);
        File.WriteAllText(path, edit(File.ReadAllText(Csv("pos"))));
        return path;
    }

    [Test]
    public void Bad_recipes_are_refused_up_front_naming_the_key_and_line()
    {
        string pos = Csv("pos"), neg = Csv("neg");
        Assert.That(LoadError(Recipe(pos, neg, "  method: median\n")), Does.Match(@":11: extract\.method: 'median' is not mean-diff, pca"));
        Assert.That(LoadError(Recipe(pos, neg, "  reduction: last\n")), Does.Contain("extract.reduction: 'last' is not response_avg, prompt_avg, prompt_last"));
        Assert.That(LoadError(Recipe(pos, neg, "  threshold: 150\n")), Does.Contain("extract.threshold: 150 is outside 0..100"));
        Assert.That(LoadError(Recipe(pos, neg, "  layers: [1]\n")), Does.Contain("extract.layers: unknown key"));
        Assert.That(LoadError(Recipe(pos, Path.Combine(Path.GetTempPath(), "gone.csv"))), Does.Match(@":9: extract\.negative: .*gone\.csv: file not found"));
        Assert.That(LoadError(Recipe(pos, neg, "  threshold: 100\n")), Does.Contain("extract: no effective pairs of 48"));
        Assert.That(LoadError(Recipe(pos, neg).Replace("trait: mood", "trait: evil")), Does.Contain("no column 'evil'"));
        string shuffled = CsvCopy("shuffled.csv", t => t.Replace("q0,", "q9999,"));
        Assert.That(LoadError(Recipe(shuffled, neg)), Does.Match(@":8: extract: .*shuffled\.csv:\d+ and .*mood_neg\.csv:\d+ are not the same question"));
        string missing = CsvCopy("no-coherence.csv", t => t.Replace("coherence", "coherent"));
        Assert.That(LoadError(Recipe(missing, neg)), Does.Contain("no column 'coherence'"));
    }

    [Test]
    public void Data_and_extract_together_or_neither_or_bipo_with_extract_are_refused()
    {
        string recipe = Recipe(Csv("pos"), Csv("neg"));
        Assert.That(LoadError(recipe, y => y.Replace("extract:\n", $"data:\n  train: {Repo.Path("examples", "demo-experiment", "mood_train.jsonl")}\nextract:\n")),
            Does.Contain("extract: an experiment takes its vectors from data: (BiPO training) or from extract: (mean difference), not both"));
        Assert.That(LoadError(recipe, y => y.Replace("layers: [1, 2]", "bipo: {epochs: 2}\nlayers: [1, 2]")), Does.Contain("bipo: BiPO settings do not apply to an extract: recipe"));
        string none = LoadError(recipe, y => y.Replace("extract:\n" + recipe, ""));
        Assert.That(none, Does.Contain(": data: is required (BiPO behaviour data), or an extract: recipe instead"));
    }

    [Test]
    public void Layer_whose_output_is_not_captured_fails_its_item_naming_the_blocks_extraction_reads()
    {
        string dir = TestModels.TempDir("extraction-layer");
        string file = WriteStudy(dir, Recipe(Csv("pos"), Csv("neg")));
        File.WriteAllText(file, File.ReadAllText(file).Replace("layers: [1, 2]", "layers: [3]"));
        RunSummary s = new ExperimentRunner(Experiment.Load(file), Path.Combine(dir, "out")).Run("train", Shard.All);
        Assert.That(s.Failed.Single(), Does.Contain("layer 3: model 'demo' has 4 blocks, and extraction reads blocks 0..2"));
        Assert.That(DemoStudy.Outputs(Path.Combine(dir, "out")), Is.Empty);
    }

    [Test]
    public void Example_extraction_file_loads_with_its_recipe_resolved()
    {
        Experiment e = Experiment.Load(Repo.Path("examples", "demo-extraction.yaml"));
        Assert.That(e.Extract, Is.EqualTo(new ExtractionRecipe(Csv("pos"), Csv("neg"), "mood", 50, SteerEngine.Capture.ExtractionMethod.MeanDiff,
            SteerEngine.Capture.Reduction.ResponseAvg, 8)));
        Assert.That(e.TrainData, Is.Null);
        Assert.That(e.Generate.Multipliers, Has.Length.EqualTo(9));
        Assert.That(ExperimentRunner.ResolvedJson(e), Does.Contain("\"extract\"").And.Not.Contain("\"bipo\""));
    }
}
