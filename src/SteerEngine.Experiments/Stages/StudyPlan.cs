using System.Text;
using SteerEngine.Generation;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Training;

namespace SteerEngine.Experiments.Stages;

/// <summary>
/// Every item of every stage of a study and how to run it. Train: one item per (model, layer), all epochs, through
/// <see cref="BipoTrainer"/>; epoch N's vector counts as written once its line is in evaluation_metrics.jsonl (the
/// trainer appends it after the vector files). With an extract: recipe instead, one item per (model, layer) writes
/// the single epoch's vector through <see cref="RecipeExtraction"/> (the model's activations captured once per
/// process for all its layers), done when the vector exists. Generate: one item per (model, layer, epoch), the question ×
/// multiplier × sample grid through <see cref="GenerateJob"/>. Judge: one item per (model, layer, epoch, task).
/// Generate and judge write to a .partial file that survives a kill and is resumed, then rename the finished file
/// into place, so an output that exists is complete.
/// </summary>
public sealed class StudyPlan(Experiment experiment, ExperimentLayout layout, IJudgeFactory judges, Action<string> log) : IDisposable
{
    readonly Dictionary<(string, CpuKernelChoice), LanguageModel> _models = [];
    readonly Dictionary<string, ExtractedDirections> _extracted = [];
    IJudge? _judge;

    public Experiment Experiment => experiment;
    public ExperimentLayout Layout => layout;

    public IEnumerable<StageItem> Items(string stage) => stage switch
    {
        StageNames.Train => TrainItems(),
        StageNames.Generate => GenerateItems(),
        StageNames.Judge => JudgeItems(),
        _ => throw new ArgumentException($"unknown stage '{stage}' (expected train, generate, judge or all)"),
    };

    IEnumerable<StageItem> TrainItems() => experiment.Extract is null ? BipoItems() : ExtractItems(experiment.Extract);

    IEnumerable<StageItem> BipoItems() =>
        from m in experiment.Models
        from layer in experiment.Layers
        select new StageItem
        {
            Stage = StageNames.Train, Name = $"{m.Name} layer{layer}", Output = layout.Metrics(m.Name, layer),
            IsDone = () => EpochsTrained(m.Name, layer) >= experiment.Bipo.Epochs,
            InputsReady = () => true,
            Run = _ => Train(m, layer),
        };

    IEnumerable<StageItem> ExtractItems(ExtractionRecipe recipe) =>
        from m in experiment.Models
        from layer in experiment.Layers
        let output = layout.Vector(m.Name, layer, 1)
        select new StageItem
        {
            Stage = StageNames.Train, Name = $"{m.Name} layer{layer}", Output = output,
            IsDone = () => File.Exists(output),
            InputsReady = () => true,
            Run = _ => Extract(recipe, m, layer),
        };

    /// <summary>The train item's output that a (model, layer)'s generate items wait on.</summary>
    string TrainOutput(string model, int layer) => experiment.Extract is null ? layout.Metrics(model, layer) : layout.Vector(model, layer, 1);

    bool VectorReady(string model, int layer, int epoch) =>
        experiment.Extract is null ? EpochsTrained(model, layer) >= epoch : File.Exists(layout.Vector(model, layer, epoch));

    IEnumerable<StageItem> GenerateItems() =>
        from m in experiment.Models
        from layer in experiment.Layers
        from epoch in Enumerable.Range(1, experiment.Epochs)
        let output = layout.Generations(m.Name, layer, epoch)
        select new StageItem
        {
            Stage = StageNames.Generate, Name = $"{m.Name} layer{layer} ep{epoch}", Output = output,
            IsDone = () => File.Exists(output),
            InputsReady = () => VectorReady(m.Name, layer, epoch),
            Inputs = [TrainOutput(m.Name, layer)],
            Run = _ => Generate(m, layer, epoch, output),
        };

    IEnumerable<StageItem> JudgeItems() =>
        from m in experiment.Models
        from layer in experiment.Layers
        from epoch in Enumerable.Range(1, experiment.Epochs)
        from task in experiment.Judge?.Tasks ?? []
        let generations = layout.Generations(m.Name, layer, epoch)
        let output = layout.Scores(m.Name, layer, epoch, task.Name)
        select new StageItem
        {
            Stage = StageNames.Judge, Name = $"{m.Name} layer{layer} ep{epoch} {task.Name}", Output = output,
            IsDone = () => File.Exists(output),
            InputsReady = () => File.Exists(generations),
            Inputs = [generations],
            Run = _ => Judge(task, generations, output),
        };

    /// <summary>Epochs whose metrics line is in the layer's evaluation_metrics.jsonl (and so whose vector files are whole).</summary>
    public int EpochsTrained(string model, int layer)
    {
        var ids = JsonlRecords.Ids(layout.Metrics(model, layer));
        int n = 0;
        while (ids.Contains($"layer{layer}_epoch{n + 1}")) n++;
        return n;
    }

    void Train(ExperimentModel m, int layer)
    {
        // Training runs its own exact f32 ops over the memory-mapped weights: no packed copy is needed.
        LanguageModel lm = Model(m, CpuKernelChoice.Exact);
        var train = PreferenceData.Load(experiment.TrainData!, lm, experiment.TrainSystem);
        var test = experiment.TestData is string t ? PreferenceData.Load(t, lm, experiment.TrainSystem) : train;
        new BipoTrainer(lm.Transformer, experiment.Bipo).Run([layer], train, test, layout.VectorDir(m.Name, layer), resume: true,
            onEpoch: e => log($"train {m.Name} layer{layer}: epoch {e.Epoch}, loss {e.TrainLoss:0.0000}"), log: log);
    }

    void Extract(ExtractionRecipe recipe, ExperimentModel m, int layer)
    {
        string dir = layout.VectorDir(m.Name, layer);
        RecipeExtraction.RemoveLeftovers(dir);
        // The kernels steer extract uses by default (and the generate stage's model, loaded once).
        LanguageModel lm = Model(m, CpuKernelChoice.Auto);
        RecipeExtraction.CheckLayer(lm.Config.NumLayers, layer, m.Name);
        if (!_extracted.TryGetValue(m.Path, out ExtractedDirections? d))
        {
            _extracted[m.Path] = d = RecipeExtraction.Extract(lm, recipe);
            log($"extract {m.Name}: {d.Pairs} effective pairs of {d.Rows}, activations captured for every layer");
        }
        RecipeExtraction.Write(d, recipe, m.Name, layer, dir);
        log($"extract {m.Name} layer{layer}: ‖v‖ {Math.Sqrt(d.Directions[layer + 1].Sum(x => (double)x * x)):0.###}, separation {d.Separation[layer + 1]:0.00}");
    }

    void Generate(ExperimentModel m, int layer, int epoch, string output)
    {
        GenerationGrid g = experiment.Generate;
        var spec = new GenerateJobSpec
        {
            Prompts = PromptSource.Read(g.Questions, g.QuestionField, g.IdField),
            Vectors = [SweepVector.FromFile(layout.Vector(m.Name, layer, epoch))],
            Layers = [layer],
            Multipliers = g.Multipliers,
            Steering = g.Steering,
            SystemPrompt = g.System,
            SamplesPerPrompt = g.Samples,
            MaxNewTokens = g.MaxNewTokens,
            Sampling = g.Sampling,
            Seed = g.Seed,
            Logprobs = g.Logprobs,
        };
        string partial = ExperimentLayout.Partial(output);
        JobSummary s = GenerateJob.Run(Model(m, CpuKernelChoice.Auto), spec, partial, resume: true);
        JsonlRecords.Finish(partial, output, r => r.GetProperty("item").GetInt64());
        log($"generate {m.Name} layer{layer} ep{epoch}: {s.Written} samples written, {s.Skipped} already there");
    }

    void Judge(JudgeTask task, string generations, string output)
    {
        var records = JsonlRecords.Read(generations);
        var order = records.Select((r, i) => (Id: r.GetProperty("id").GetString()!, i)).ToDictionary(x => x.Id, x => x.i);
        string Text(System.Text.Json.JsonElement r, string field) => r.TryGetProperty(field, out var v) && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString()! : "";
        // Prompt ids keep their JSON type (7 and "7" are different prompts): compare them as written.
        string PromptKey(System.Text.Json.JsonElement r) => r.TryGetProperty("prompt_id", out var v) ? v.GetRawText() : "";
        // The unsteered sample of the same question and sample index, for pairwise tasks.
        var baseline = records.Where(r => r.GetProperty("multiplier").GetDouble() == 0)
            .ToDictionary(r => (PromptKey(r), r.GetProperty("sample_index").GetInt32()), r => Text(r, "response"));
        string partial = ExperimentLayout.Partial(output);
        using (JsonlOutput scores = JsonlOutput.Open(partial, resume: true, out HashSet<string> done))
        {
            var byId = records.ToDictionary(r => r.GetProperty("id").GetString()!);
            var todo = records.Where(r => !done.Contains(CallerId.Key(r.GetProperty("id")))).Select(r => new JudgeSample(
                r.GetProperty("id").GetString()!, Text(r, "question"), Text(r, "response"), r.GetProperty("multiplier").GetDouble(),
                baseline.GetValueOrDefault((PromptKey(r), r.GetProperty("sample_index").GetInt32())))).ToList();
            if (todo.Count > 0)
            {
                _judge ??= judges.Create(experiment.Judge!);
                foreach (JudgeVerdict v in _judge.Score(task, todo, output))
                {
                    var r = byId[v.Id];
                    scores.Append(Encoding.UTF8.GetBytes(JsonlOutput.ToLine(w =>
                    {
                        w.WriteString("id", v.Id);
                        w.WriteString("task", task.Name);
                        w.WriteString("scorer", task.Scorer);
                        if (v.Win is double win) w.WriteNumber("win", win);
                        if (v.Score is double score) w.WriteNumber("score", score); else if (v.Win is null) w.WriteNull("score");
                        w.WriteString("raw", v.Raw);
                        w.WriteNumber("multiplier", r.GetProperty("multiplier").GetDouble());
                        w.WriteNumber("layer", r.GetProperty("layer").GetInt32());
                        w.WriteNumber("epoch", r.GetProperty("epoch").GetInt32());
                        if (r.TryGetProperty("prompt_id", out var promptId)) { w.WritePropertyName("prompt_id"); promptId.WriteTo(w); }
                        w.WriteNumber("sample_index", r.GetProperty("sample_index").GetInt32());
                        w.WriteString("model", Text(r, "model"));
                        w.WriteString("judge", experiment.Judge!.Provider);
                    })));
                }
            }
        }
        int judged = JsonlRecords.Ids(partial).Count;
        if (judged != records.Count)
            throw new JudgeUnavailableException($"{output}: the judge returned {judged} of {records.Count} verdicts; the {judged} are kept, run the judge stage again for the rest");
        JsonlRecords.Finish(partial, output, r => order[r.GetProperty("id").GetString()!]);
        log($"judge {task.Name} {Path.GetFileName(generations)}: {records.Count} samples scored");
    }

    LanguageModel Model(ExperimentModel m, CpuKernelChoice kernels)
    {
        if (!_models.TryGetValue((m.Path, kernels), out LanguageModel? lm))
            _models[(m.Path, kernels)] = lm = LanguageModel.Load(m.Path, w => log($"warning: {w}"), kernels);
        return lm;
    }

    public void Dispose()
    {
        foreach (LanguageModel lm in _models.Values) lm.Dispose();
        _models.Clear();
        _judge?.Dispose();
    }
}
