using System.Globalization;
using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Generation.Jobs;
using SteerEngine.Steering;
using SteerEngine.Training;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SteerEngine.Experiments;

/// <summary>A model of the study: its name in the output layout and its Hugging Face directory.</summary>
public sealed record ExperimentModel(string Name, string Path);

/// <summary>
/// The extract: recipe, the other way to a study's vectors: two row-aligned persona-vectors CSVs (positive and negative
/// answers with their trait and coherence scores), their effective pairs (<see cref="PersonaPairs"/>) run through the
/// model, and per layer the mean difference (or first principal component) of the answers' activations at that
/// block's output. It has no epochs: its vector is epoch 1 of the layout.
/// </summary>
public sealed record ExtractionRecipe(string Positive, string Negative, string Trait, double Threshold, ExtractionMethod Method, Reduction Reduction, int BatchSize)
{
    public static readonly (string Name, Reduction Value)[] Reductions = [("response_avg", Reduction.ResponseAvg), ("prompt_avg", Reduction.PromptAvg), ("prompt_last", Reduction.PromptLast)];
    public static readonly (string Name, ExtractionMethod Value)[] Methods = [("mean-diff", ExtractionMethod.MeanDiff), ("pca", ExtractionMethod.Pca)];

    public string ReductionName => Reductions.First(r => r.Value == Reduction).Name;
    public string MethodName => Methods.First(m => m.Value == Method).Name;
}

/// <summary>The generation grid: questions × multipliers × samples, with its sampling settings.</summary>
public sealed record GenerationGrid(string Questions, string QuestionField, string IdField, float[] Multipliers, int Samples, int MaxNewTokens,
    SamplingOptions Sampling, ulong Seed, SteeringPositions Positions, string? System, bool Logprobs = false)
{
    /// <summary>
    /// The positions mask, operation, hook point and condition of every steered sample (with first_k's k, tokens' list,
    /// cap's lo/hi, set's value, attn_z's head).
    /// </summary>
    public SteeringTermShape Steering { get; init; } = new(new SteeringAdd(0, [], 0f, Positions));

    /// <summary>The condition vector's file (absolute) when <see cref="Steering"/> has a condition.</summary>
    public string? ConditionVector { get; init; }
}

/// <summary>One judge task: its name (the {task} of {task}_scores_ep{N}.jsonl), rubric file and scorer (null: the rubric's own kind).</summary>
public sealed record JudgeTask(string Name, string Rubric, string? Scorer);

/// <summary>
/// Where and how the samples are judged: provider, judge model name, API base URL and the variable holding the key
/// (remote providers); live calls, or with <see cref="Batch"/> the Batch API, polled every <see cref="BatchPoll"/>.
/// </summary>
public sealed record JudgeSettings(string Provider, string? Model, string? BaseUrl, string? ApiKeyEnv, bool Batch, IReadOnlyList<JudgeTask> Tasks, int MaxAttempts = 6)
{
    public TimeSpan BatchPoll { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>How stages coordinate: heartbeat period, the age after which a lock is stale, the poll period of a waiting stage.</summary>
public sealed record LockTiming(TimeSpan Heartbeat, TimeSpan StaleAfter, TimeSpan Poll)
{
    public static LockTiming Default { get; } = new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(1));
}

/// <summary>
/// A whole steering study, resolved from its YAML file: paths are absolute (relative ones are taken from the file's
/// folder), every value checked. <see cref="Load"/> reports the first problem as "FILE:LINE: key: what is wrong".
/// The vectors come from BiPO training on <see cref="TrainData"/>, or, when <see cref="Extract"/> is set, from its recipe.
/// </summary>
public sealed partial record Experiment(string File, string Name, string Output, string Behavior, IReadOnlyList<ExperimentModel> Models,
    string? TrainData, string? TestData, string? TrainSystem, int[] Layers, BipoOptions Bipo, GenerationGrid Generate,
    JudgeSettings? Judge, LockTiming Locks, Report.RankingOptions Report, ExtractionRecipe? Extract = null)
{
    static readonly string[] TopKeys = ["name", "output", "behavior", "models", "data", "extract", "layers", "bipo", "generate", "judge", "locks", "report"];

    /// <summary>The epochs each (model, layer) has vectors for: BiPO's, or the single one of an extraction.</summary>
    public int Epochs => Extract is null ? Bipo.Epochs : 1;

    public static Experiment Load(string path)
    {
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"{path}: experiment file not found");
        var yaml = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlException e)
        {
            throw new InvalidDataException($"{path}:{e.Start.Line}: not valid YAML ({e.InnerException?.Message ?? e.Message})");
        }
        catch (InvalidOperationException)
        {
            // The scanner fails this way on some unclosed flow collections; its position is not reported.
            throw new InvalidDataException($"{path}:{LastLine(path)}: not valid YAML (an unclosed [ ] or {{ }} collection?)");
        }
        if (yaml.Documents.Count != 1 || yaml.Documents[0].RootNode is not YamlMappingNode root)
            throw new InvalidDataException($"{path}:1: an experiment file is one YAML mapping (name:, output:, models:, ...)");
        return new Parser(path).Parse(root);
    }

    static int LastLine(string path) => System.IO.File.ReadAllLines(path).Length;

    /// <summary>Reads the YAML tree key by key; every error names the file, the line and the key's full path.</summary>
    sealed partial class Parser(string path)
    {
        readonly string _dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;

        InvalidDataException Error(YamlNode node, string key, string message) => new($"{path}:{node.Start.Line}: {key}: {message}");

        public Experiment Parse(YamlMappingNode root)
        {
            CheckKeys(root, "", TopKeys);
            var extract = Mapping(root, "extract", required: false);
            var data = Mapping(root, "data", required: false);
            if (data is null && extract is null) throw Error(root, "data", "is required (BiPO behaviour data), or an extract: recipe instead");
            if (data is not null && extract is not null)
                throw Error(root.Children["extract"], "extract", "an experiment takes its vectors from data: (BiPO training) or from extract: (mean difference), not both");
            if (extract is not null && root.Children.TryGetValue("bipo", out var bipoNode))
                throw Error(bipoNode, "bipo", "BiPO settings do not apply to an extract: recipe (it trains nothing and has a single epoch)");
            if (data is not null) CheckKeys(data, "data", ["train", "test", "system"]);
            var models = Sequence(root, "models").Select((node, i) =>
            {
                string key = $"models[{i}]";
                if (node is not YamlMappingNode m) throw Error(node, key, "expected a mapping with name and path");
                CheckKeys(m, key, ["name", "path"]);
                string modelPath = ExistingPath(m, "path", key, directory: true);
                string name = OptionalString(m, "name", key) ?? System.IO.Path.GetFileName(modelPath);
                if (name.Length == 0 || name.IndexOfAny(['/', '\\']) >= 0) throw Error(m, $"{key}.name", $"'{name}' must be a non-empty name without '/'");
                return new ExperimentModel(name, modelPath);
            }).ToList();
            if (models.Count == 0) throw Error(root, "models", "needs at least one model");
            if (models.Select(m => m.Name).Distinct().Count() != models.Count) throw Error(root, "models", "model names must be unique");
            var layers = Sequence(root, "layers").Select((n, i) => Int(n, $"layers[{i}]", min: 0)).ToArray();
            if (layers.Length == 0) throw Error(root, "layers", "needs at least one layer");
            if (layers.Distinct().Count() != layers.Length) throw Error(root, "layers", "a layer is listed twice");

            string behavior = RequiredString(root, "behavior", "");
            if (behavior.IndexOfAny(['/', '\\']) >= 0) throw Error(root, "behavior", $"'{behavior}' must not contain '/'");
            return new Experiment(System.IO.Path.GetFullPath(path), OptionalString(root, "name", "") ?? System.IO.Path.GetFileNameWithoutExtension(path),
                ResolvePath(RequiredString(root, "output", "")), behavior, models,
                data is null ? null : ExistingPath(data, "train", "data"), data is not null && data.Children.ContainsKey("test") ? ExistingPath(data, "test", "data") : null,
                data is null ? null : OptionalString(data, "system", "data"), layers, Bipo(Mapping(root, "bipo", required: false)), Generate(Mapping(root, "generate", required: true)!, layers, models),
                Judge(Mapping(root, "judge", required: false)), Locks(Mapping(root, "locks", required: false)), ReportOptions(Mapping(root, "report", required: false)),
                extract is null ? null : Extract(extract, behavior));
        }

        ExtractionRecipe Extract(YamlMappingNode node, string behavior)
        {
            const string k = "extract";
            CheckKeys(node, k, ["positive", "negative", "trait", "threshold", "method", "reduction", "batch_size"]);
            string positive = ExistingPath(node, "positive", k), negative = ExistingPath(node, "negative", k);
            string trait = OptionalString(node, "trait", k) ?? behavior;
            double threshold = DoubleOr(node, "threshold", k, 50);
            if (threshold is < 0 or > 100) throw Error(node.Children["threshold"], $"{k}.threshold", $"{threshold} is outside 0..100");
            string Choice<T>((string Name, T Value)[] choices, string key, string fallback)
            {
                string v = OptionalString(node, key, k) ?? fallback;
                return choices.Any(c => c.Name == v) ? v : throw Error(node.Children[key], $"{k}.{key}", $"'{v}' is not {string.Join(", ", choices.Select(c => c.Name))}");
            }
            string method = Choice(ExtractionRecipe.Methods, "method", "mean-diff"), reduction = Choice(ExtractionRecipe.Reductions, "reduction", "response_avg");
            // The CSVs are read now (no model needed), so a bad recipe file stops the study before anything runs.
            PersonaPairs pairs;
            try { pairs = PersonaPairs.Load(positive, negative, trait, threshold); }
            catch (InvalidDataException e) { throw Error(node, k, e.Message); }
            if (pairs.Effective.Count == 0)
                throw Error(node, k, $"no effective pairs of {pairs.Positive.Count} in {positive} and {negative}: none has a positive '{trait}' score ≥ {threshold}, " +
                                     $"a negative one < {100 - threshold} and both coherence scores ≥ 50");
            return new ExtractionRecipe(positive, negative, trait, threshold, ExtractionRecipe.Methods.First(m => m.Name == method).Value,
                ExtractionRecipe.Reductions.First(r => r.Name == reduction).Value, IntOr(node, "batch_size", k, 8, 1));
        }

        BipoOptions Bipo(YamlMappingNode? node)
        {
            var d = new BipoOptions();
            if (node is null) return d;
            CheckKeys(node, "bipo", ["epochs", "lr", "beta", "batch_size", "grad_accum", "warmup", "weight_decay", "max_grad_norm", "seed"]);
            var o = new BipoOptions
            {
                Epochs = IntOr(node, "epochs", "bipo", d.Epochs, 1), LearningRate = DoubleOr(node, "lr", "bipo", d.LearningRate),
                Beta = DoubleOr(node, "beta", "bipo", d.Beta), BatchSize = IntOr(node, "batch_size", "bipo", d.BatchSize, 1),
                GradientAccumulation = IntOr(node, "grad_accum", "bipo", d.GradientAccumulation, 1), WarmupSteps = IntOr(node, "warmup", "bipo", d.WarmupSteps, 0),
                WeightDecay = DoubleOr(node, "weight_decay", "bipo", d.WeightDecay), MaxGradNorm = DoubleOr(node, "max_grad_norm", "bipo", d.MaxGradNorm),
                Seed = IntOr(node, "seed", "bipo", d.Seed, int.MinValue),
            };
            try { o.Validate(); }
            catch (ArgumentException e) { throw Error(node, "bipo", e.Message); }
            return o;
        }

        GenerationGrid Generate(YamlMappingNode node, int[] layers, IReadOnlyList<ExperimentModel> models)
        {
            const string k = "generate";
            CheckKeys(node, k, ["questions", "question_field", "id_field", "system", "multipliers", "samples", "max_new_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed", "positions", "logprobs", "k", "tokens", "op", "lo", "hi", "value", "hook", "head", "condition"]);
            YamlNode multipliersNode = node.Children.TryGetValue("multipliers", out var mn) ? mn : throw Error(node, $"{k}.multipliers", "is required (a list, or a range \"start:stop:step\")");
            float[] multipliers;
            try
            {
                multipliers = multipliersNode switch
                {
                    YamlScalarNode s => SweepValues.Multipliers(s.Value ?? ""),
                    YamlSequenceNode seq => seq.Children.Select((n, i) => (float)Double(n, $"{k}.multipliers[{i}]")).ToArray(),
                    _ => throw Error(multipliersNode, $"{k}.multipliers", "expected a list or a range"),
                };
            }
            catch (ArgumentException e) { throw Error(multipliersNode, $"{k}.multipliers", e.Message); }
            if (multipliers.Distinct().Count() != multipliers.Length) throw Error(multipliersNode, $"{k}.multipliers", "a multiplier is listed twice");
            var sampling = new SamplingOptions((float)DoubleOr(node, "temperature", k, 1), (float)DoubleOr(node, "top_p", k, 1), IntOr(node, "top_k", k, 0, 0),
                (float)DoubleOr(node, "min_p", k, 0), (float)DoubleOr(node, "repetition_penalty", k, 1));
            try { sampling.Validate(); }
            catch (ArgumentException e) { throw Error(node, k, e.Message); }
            string positions = OptionalString(node, "positions", k) ?? "all";
            SteeringPositions parsed;
            try { parsed = SteeringPositionsExtensions.Parse(positions); }
            catch (ArgumentException e) { throw Error(node.Children["positions"], $"{k}.positions", e.Message); }
            var (shape, conditionVector) = TermShape(node, k, parsed, layers, models);
            return new GenerationGrid(ExistingPath(node, "questions", k), OptionalString(node, "question_field", k) ?? "question", OptionalString(node, "id_field", k) ?? "id",
                multipliers, IntOr(node, "samples", k, 1, 1), IntOr(node, "max_new_tokens", k, 64, 1), sampling, (ulong)IntOr(node, "seed", k, 0, 0), parsed,
                OptionalString(node, "system", k), Bool(node, "logprobs", k)) { Steering = shape, ConditionVector = conditionVector };
        }

        JudgeSettings? Judge(YamlMappingNode? node)
        {
            if (node is null) return null;
            const string k = "judge";
            CheckKeys(node, k, ["provider", "model", "base_url", "api_key_env", "batch", "poll_seconds", "max_attempts", "tasks"]);
            string provider = RequiredString(node, "provider", k);
            if (provider.StartsWith("local:", StringComparison.Ordinal))
                provider = "local:" + ResolvePath(provider["local:".Length..]);
            else if (provider is not ("openai" or "anthropic"))
                throw Error(node.Children["provider"], $"{k}.provider", $"'{provider}' is not openai, anthropic or local:MODEL_DIR");
            var tasks = Sequence(node, "tasks").Select((t, i) =>
            {
                string key = $"{k}.tasks[{i}]";
                if (t is not YamlMappingNode m) throw Error(t, key, "expected a mapping with name, rubric and scorer");
                CheckKeys(m, key, ["name", "rubric", "scorer"]);
                string name = RequiredString(m, "name", key);
                if (name.Length == 0 || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_'))) throw Error(m, $"{key}.name", $"'{name}' must be letters, digits, '-' or '_'");
                string? scorer = OptionalString(m, "scorer", key);
                if (scorer is not (null or "rating" or "pairwise" or "logprob")) throw Error(m.Children["scorer"], $"{key}.scorer", $"'{scorer}' is not rating, pairwise or logprob");
                return new JudgeTask(name, ExistingPath(m, "rubric", key), scorer);
            }).ToList();
            if (tasks.Count == 0) throw Error(node, $"{k}.tasks", "needs at least one task");
            if (tasks.Select(t => t.Name).Distinct().Count() != tasks.Count) throw Error(node, $"{k}.tasks", "task names must be unique");
            bool batch = Bool(node, "batch", k);
            if (batch && provider != "openai")
                throw Error(node.Children["batch"], $"{k}.batch", $"true needs provider: openai (the OpenAI Batch API, or a server that speaks it, such as steer serve, at base_url), not '{provider}'");
            double poll = DoubleOr(node, "poll_seconds", k, 30);
            if (poll <= 0) throw Error(node.Children["poll_seconds"], $"{k}.poll_seconds", $"{poll} must be positive");
            return new JudgeSettings(provider, OptionalString(node, "model", k), OptionalString(node, "base_url", k), OptionalString(node, "api_key_env", k), batch, tasks,
                IntOr(node, "max_attempts", k, 6, 2)) { BatchPoll = TimeSpan.FromSeconds(poll) };
        }

        Report.RankingOptions ReportOptions(YamlMappingNode? node)
        {
            var d = new Report.RankingOptions();
            if (node is null) return d;
            const string k = "report";
            CheckKeys(node, k, ["trait", "coherence", "floor", "trait_weight", "coherence_weight"]);
            return new Report.RankingOptions
            {
                Trait = OptionalString(node, "trait", k), Coherence = OptionalString(node, "coherence", k) ?? d.Coherence,
                Floor = DoubleOr(node, "floor", k, d.Floor), TraitWeight = DoubleOr(node, "trait_weight", k, d.TraitWeight),
                CoherenceWeight = DoubleOr(node, "coherence_weight", k, d.CoherenceWeight),
            };
        }

        LockTiming Locks(YamlMappingNode? node)
        {
            if (node is null) return LockTiming.Default;
            CheckKeys(node, "locks", ["heartbeat_seconds", "stale_seconds", "poll_seconds"]);
            var d = LockTiming.Default;
            var t = new LockTiming(TimeSpan.FromSeconds(DoubleOr(node, "heartbeat_seconds", "locks", d.Heartbeat.TotalSeconds)),
                TimeSpan.FromSeconds(DoubleOr(node, "stale_seconds", "locks", d.StaleAfter.TotalSeconds)), TimeSpan.FromSeconds(DoubleOr(node, "poll_seconds", "locks", d.Poll.TotalSeconds)));
            if (t.Heartbeat <= TimeSpan.Zero || t.Poll <= TimeSpan.Zero || t.StaleAfter < 3 * t.Heartbeat)
                throw Error(node, "locks", "heartbeat and poll must be positive and stale_seconds at least 3 heartbeats");
            return t;
        }

        void CheckKeys(YamlMappingNode node, string at, string[] allowed)
        {
            foreach (var (keyNode, _) in node.Children)
            {
                string key = (keyNode as YamlScalarNode)?.Value ?? "";
                if (!allowed.Contains(key))
                    throw Error(keyNode, at.Length == 0 ? key : $"{at}.{key}", $"unknown key (expected one of {string.Join(", ", allowed)})");
            }
        }

        YamlMappingNode? Mapping(YamlMappingNode parent, string key, bool required)
        {
            if (!parent.Children.TryGetValue(key, out var node)) return required ? throw Error(parent, key, "is required") : null;
            return node as YamlMappingNode ?? throw Error(node, key, "expected a mapping");
        }

        IList<YamlNode> Sequence(YamlMappingNode parent, string key, string at = "")
        {
            string full = at.Length == 0 ? key : $"{at}.{key}";
            if (!parent.Children.TryGetValue(key, out var node)) throw Error(parent, full, "is required");
            return (node as YamlSequenceNode)?.Children ?? throw Error(node, full, "expected a list");
        }

        string? OptionalString(YamlMappingNode parent, string key, string at)
        {
            if (!parent.Children.TryGetValue(key, out var node)) return null;
            if (node is YamlScalarNode { Value: var v } && v is not (null or "~" or "null")) return v;
            if (node is YamlScalarNode) return null;
            throw Error(node, at.Length == 0 ? key : $"{at}.{key}", "expected a single value");
        }

        string RequiredString(YamlMappingNode parent, string key, string at) =>
            OptionalString(parent, key, at) ?? throw Error(parent, at.Length == 0 ? key : $"{at}.{key}", "is required");

        string ResolvePath(string p) => System.IO.Path.GetFullPath(System.IO.Path.Combine(_dir, p));

        string ExistingPath(YamlMappingNode parent, string key, string at, bool directory = false)
        {
            string full = at.Length == 0 ? key : $"{at}.{key}";
            string resolved = ResolvePath(RequiredString(parent, key, at));
            if (directory ? !Directory.Exists(resolved) : !System.IO.File.Exists(resolved))
                throw Error(parent.Children[key], full, $"{resolved}: {(directory ? "directory" : "file")} not found");
            return resolved;
        }

        bool Bool(YamlMappingNode parent, string key, string at) =>
            parent.Children.TryGetValue(key, out var n) && (n is YamlScalarNode s && bool.TryParse(s.Value, out bool v) ? v : throw Error(n, $"{at}.{key}", "expected true or false"));

        int Int(YamlNode node, string key, int min) =>
            node is YamlScalarNode { Value: var v } && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x) && x >= min
                ? x : throw Error(node, key, $"'{(node as YamlScalarNode)?.Value}' is not a whole number ≥ {min}");

        double Double(YamlNode node, string key) =>
            node is YamlScalarNode { Value: var v } && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x)
                ? x : throw Error(node, key, $"'{(node as YamlScalarNode)?.Value}' is not a number");

        int IntOr(YamlMappingNode parent, string key, string at, int fallback, int min) =>
            parent.Children.TryGetValue(key, out var n) ? Int(n, $"{at}.{key}", min) : fallback;

        double DoubleOr(YamlMappingNode parent, string key, string at, double fallback) =>
            parent.Children.TryGetValue(key, out var n) ? Double(n, $"{at}.{key}") : fallback;
    }
}
