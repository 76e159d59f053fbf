using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using SteerEngine.Experiments.Stages;
using SteerEngine.Generation.Jobs;
using SteerEngine.Steering;

namespace SteerEngine.Experiments;

/// <summary>What a run did: items it finished, items it found done, items that failed here, items it gave up waiting on.</summary>
public sealed record RunSummary(int Finished, int AlreadyDone, IReadOnlyList<string> Failed, IReadOnlyList<string> Blocked)
{
    public bool Ok => Failed.Count == 0 && Blocked.Count == 0;
}

/// <summary>
/// <c>steer experiment run</c>: each stage does every item of its shard whose inputs are complete and whose output
/// is not, claiming it through its lock file; items another process holds, and items whose inputs an earlier stage
/// has not finished, are polled until they are done. An item that fails leaves a .failed note (and its work file,
/// so nothing done is lost) and the run goes on with the rest; an item whose input failed is not waited for.
/// </summary>
public sealed class ExperimentRunner(Experiment experiment, string? outputRoot = null, IJudgeFactory? judges = null, Action<string>? log = null)
{
    readonly ExperimentLayout _layout = new(outputRoot ?? experiment.Output, experiment.Behavior);
    readonly Action<string> _log = log ?? (_ => { });

    public ExperimentLayout Layout => _layout;

    public RunSummary Run(string stage, Shard shard, bool wait = true)
    {
        string[] stages = stage == "all" ? StageNames.All : StageNames.All.Contains(stage) ? [stage]
            : throw new ArgumentException($"--stage '{stage}': expected train, generate, judge or all");
        if (stages.Contains(StageNames.Judge) && experiment.Judge is null && stage == StageNames.Judge)
            throw new ArgumentException($"{experiment.File}: has no judge: section, so there is no judge stage to run");
        WriteConfig();
        using var plan = new StudyPlan(experiment, _layout, judges ?? LibraryJudge.Factory, _log);
        int finished = 0, already = 0;
        var failed = new List<string>();
        var blocked = new List<string>();
        foreach (string s in stages)
        {
            var items = plan.Items(s).Where((_, i) => shard.Owns(i)).ToList();
            already += items.Count(i => i.IsDone());
            var failedHere = new HashSet<StageItem>();
            while (true)
            {
                int pending = 0;
                blocked.RemoveAll(b => b.StartsWith(s + " ", StringComparison.Ordinal));
                foreach (StageItem item in items)
                {
                    if (failedHere.Contains(item) || item.IsDone()) continue;
                    if (!item.InputsReady())
                    {
                        if (item.Inputs.FirstOrDefault(InputFailed) is string bad) blocked.Add($"{item}: waits on {bad}, which failed ({FailureMessage(bad)})");
                        else pending++;
                        continue;
                    }
                    using ItemLock? claim = ItemLock.TryAcquire(item.LockPath, experiment.Locks);
                    if (claim is null) { pending++; continue; }
                    if (item.IsDone()) continue; // finished by another process between the look and the claim
                    if (TryRun(item, claim)) finished++;
                    else failedHere.Add(item);
                }
                if (pending == 0 || !wait) break;
                Thread.Sleep(experiment.Locks.Poll);
            }
            failed.AddRange(failedHere.Select(i => $"{i}: {FailureMessage(i.Output)}"));
        }
        var summary = new RunSummary(finished, already, failed, blocked);
        // The whole study done by this run: its report too (steer report DIR makes it again with other options).
        if (stage == "all" && shard.Count == 1 && summary.Ok && finished > 0 && experiment.Judge is not null)
        {
            var report = Report.StudyReport.Write(_layout.Root, Path.Combine(_layout.Root, "report"), experiment.Report);
            _log($"report: {report.IndexPath}");
        }
        return summary;
    }

    bool TryRun(StageItem item, ItemLock claim)
    {
        if (File.Exists(item.FailurePath)) File.Delete(item.FailurePath);
        _log($"{item}: started");
        try
        {
            item.Run(claim);
            if (claim.Lost) _log($"warning: {item}: this process stalled and its lock was taken over; its output stays as written");
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or UnauthorizedAccessException or Model.ModelFormatException
                                      or Tokenization.TokenizerFormatException or Tokenization.ChatTemplateException or HttpRequestException)
        {
            AtomicFile.WriteAllText(item.FailurePath, JsonSerializer.Serialize(new
            {
                error = e.Message, host = Environment.MachineName, pid = Environment.ProcessId, time = DateTime.UtcNow,
            }));
            _log($"{item}: failed: {e.Message}");
            return false;
        }
    }

    static bool InputFailed(string output) =>
        File.Exists(ExperimentLayout.Failure(output)) && !File.Exists(ExperimentLayout.Lock(output));

    internal static string FailureMessage(string output)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(ExperimentLayout.Failure(output)));
            return doc.RootElement.GetProperty("error").GetString() ?? "";
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException)
        {
            return "no failure note";
        }
    }

    /// <summary>
    /// config.json: the resolved experiment (lock timing and the output folder aside). An output folder holds one experiment:
    /// a file that resolves differently (another multiplier, op, hook, condition vector, ...) is refused, naming the first
    /// key that differs.
    /// </summary>
    void WriteConfig()
    {
        string json = ResolvedJson(experiment);
        if (File.Exists(_layout.Config))
        {
            string held = File.ReadAllText(_layout.Config);
            if (held != json)
                throw new InvalidDataException($"{_layout.Config}: the output folder holds a different experiment " +
                                               $"({ConfigDifference.Describe(json, held, Path.GetFileName(experiment.File))}); choose another output, or move it aside");
            return;
        }
        AtomicFile.WriteAllText(_layout.Config, json);
    }

    /// <summary>The resolved experiment as JSON; a BiPO study has data: and bipo:, an extraction study extract: in their place.</summary>
    public static string ResolvedJson(Experiment e)
    {
        var models = e.Models.Select(m => new { name = m.Name, path = m.Path });
        GenerationGrid g = e.Generate;
        var generate = new Dictionary<string, object?>
        {
            ["questions"] = g.Questions, ["question_field"] = g.QuestionField, ["id_field"] = g.IdField, ["system"] = g.System,
            ["multipliers"] = g.Multipliers, ["samples"] = g.Samples, ["max_new_tokens"] = g.MaxNewTokens,
            ["temperature"] = g.Sampling.Temperature, ["top_p"] = g.Sampling.TopP, ["top_k"] = g.Sampling.TopK, ["min_p"] = g.Sampling.MinP,
            ["repetition_penalty"] = g.Sampling.RepetitionPenalty, ["seed"] = g.Seed, ["positions"] = g.Positions.Name(), ["logprobs"] = g.Logprobs,
        };
        AddTerm(generate, g);
        var judge = e.Judge is null ? null : new
        {
            provider = e.Judge.Provider, model = e.Judge.Model, base_url = e.Judge.BaseUrl, api_key_env = e.Judge.ApiKeyEnv, batch = e.Judge.Batch, max_attempts = e.Judge.MaxAttempts,
            tasks = e.Judge.Tasks.Select(t => new { name = t.Name, rubric = t.Rubric, scorer = t.Scorer }),
        };
        object resolved = e.Extract is { } x
            ? new
            {
                name = e.Name, behavior = e.Behavior, models,
                extract = new
                {
                    positive = x.Positive, negative = x.Negative, trait = x.Trait, threshold = x.Threshold, method = x.MethodName, reduction = x.ReductionName,
                    batch_size = x.BatchSize,
                },
                layers = e.Layers, generate, judge,
            }
            : new
            {
                name = e.Name, behavior = e.Behavior, models,
                data = new { train = e.TrainData, test = e.TestData, system = e.TrainSystem },
                layers = e.Layers,
                bipo = new { epochs = e.Bipo.Epochs, lr = e.Bipo.LearningRate, beta = e.Bipo.Beta, batch_size = e.Bipo.BatchSize, grad_accum = e.Bipo.GradientAccumulation,
                             warmup = e.Bipo.WarmupSteps, weight_decay = e.Bipo.WeightDecay, max_grad_norm = e.Bipo.MaxGradNorm, seed = e.Bipo.Seed },
                generate, judge,
            };
        return JsonSerializer.Serialize(resolved, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// The steering term beyond positions, each key only where it differs from the plain add at the block output, so a
    /// plain-add study resolves to the bytes older versions wrote and their output folders stay valid. The condition
    /// carries a SHA-256 of the vector row it uses, so a condition file rewritten in place counts as a change.
    /// </summary>
    static void AddTerm(Dictionary<string, object?> generate, GenerationGrid g)
    {
        SteeringAdd t = g.Steering.Template;
        if (t.Positions == SteeringPositions.FirstK) generate["k"] = t.FirstK;
        if (t.Positions == SteeringPositions.Tokens) generate["tokens"] = t.TokenPositions;
        if (t.Op != SteeringOp.Add) generate["op"] = t.Op.Name();
        if (t.Op == SteeringOp.Cap)
        {
            generate["lo"] = float.IsFinite(t.Lo) ? t.Lo : null;
            generate["hi"] = float.IsFinite(t.Hi) ? t.Hi : null;
        }
        if (t.Op == SteeringOp.Set) generate["value"] = t.Value;
        if (t.Hook != SteeringHook.ResidPost) generate["hook"] = t.Hook.Name();
        if (t.Head is { } head) generate["head"] = head;
        if (t.Condition is { } c)
            generate["condition"] = new
            {
                vector = g.ConditionVector, vector_sha256 = Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(c.Vector.AsSpan()))),
                layer = c.Layer, threshold = c.Threshold, comparator = c.ComparatorName,
            };
    }
}
