using System.CommandLine;
using Spectre.Console;
using SteerEngine.Generation;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer generate</c>: one prompt printed to the terminal, or a sweep job (prompts file ×
/// vectors × layers × multipliers × samples) written to JSONL, resumable and shardable.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model directory (Hugging Face layout)", Required = true };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact (the f32 reference path)", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu (the CUDA backend on the CPU emulator)", DefaultValueFactory = _ => "cpu" };
        var tp = new Option<int>("--tp") { Description = "tensor-parallel devices (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };
        var prompt = new Option<string?>("--prompt") { Description = "one user message (or raw text with --raw)" };
        var prompts = new Option<string?>("--prompts") { Description = "prompts file: .jsonl (one object per line; .json is read the same way) or .csv (header row)" };
        var promptField = new Option<string>("--prompt-field") { Description = "field holding the prompt text", DefaultValueFactory = _ => "question" };
        var idField = new Option<string>("--id-field") { Description = "field holding the prompt id, written back as prompt_id with its JSON type (rows without it: the row number)", DefaultValueFactory = _ => "id" };
        var system = new Option<string?>("--system") { Description = "system prompt" };
        var raw = new Option<bool>("--raw") { Description = "feed prompts as plain text, without the chat template" };
        var vectors = new Option<string[]>("--vector") { Description = "steering vector file (repeat for several): .pt/.pth (torch.save), .safetensors, .gguf (control vector), .npy; [hidden] or [layers+1, hidden]; or an SAE feature, sae.safetensors#W_dec[ROW][*SCALE]", AllowMultipleArgumentsPerToken = false };
        var layers = new Option<string?>("--layers", "--layer") { Description = "decoder blocks to steer (0-based): 12,14 or 10:20:2" };
        var multipliers = new Option<string>("--multipliers", "--multiplier") { Description = "list or inclusive range: -2,0,2 or -20:20:1", DefaultValueFactory = _ => "1" };
        var samples = new Option<int>("--samples-per-prompt", "--samples") { Description = "samples per prompt and steering setting", DefaultValueFactory = _ => 1 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens generated at most per sample", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { Description = "nucleus sampling: the smallest set of tokens whose probability reaches this, in (0, 1]", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "0 = off", DefaultValueFactory = _ => 0 };
        var minP = new Option<float>("--min-p") { Description = "drop tokens below this fraction of the top token's probability (0 = off)", DefaultValueFactory = _ => 0f };
        var repetition = new Option<float>("--repetition-penalty") { Description = "divides positive logits (multiplies negative ones) of tokens already in the sequence (1 = off)", DefaultValueFactory = _ => 1f };
        var stop = new Option<string[]>("--stop") { Description = "stop string (repeatable)" };
        var seed = new Option<ulong>("--seed") { Description = "job seed; each sample's seed derives from it, the prompt id and the sample index", DefaultValueFactory = _ => 0UL };
        var output = new Option<string?>("--out") { Description = "JSONL output (job mode)" };
        var resume = new Option<bool>("--resume") { Description = "continue an interrupted job: keep its records, generate the rest" };
        var shard = new Option<string>("--shard") { Description = "k/n: this process does items i with i mod n = k", DefaultValueFactory = _ => "0/1" };
        var monitor = new Option<string[]>("--monitor") { Description = "vector file (.pt, .pth, .safetensors, .gguf, .npy) whose per-token projection each record carries (repeatable)" };
        var monitorLayers = new Option<string?>("--monitor-layers") { Description = "blocks to monitor at (default: --layers)" };
        var logprobs = new Option<bool>("--logprobs") { Description = "write each generated token's log-prob" };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together", DefaultValueFactory = _ => 64 };
        var noSharing = new Option<bool>("--no-prefix-sharing") { Description = "every row computes its whole prompt (the same results, slower)" };

        var command = new Command("generate", "generate text, optionally steered; with --prompts/--out, a resumable sweep job")
        {
            model, kernels, backend, tp, prompt, prompts, promptField, idField, system, raw, vectors, layers, multipliers, samples, maxNew,
            temperature, topP, topK, minP, repetition, stop, seed, output, resume, shard, maxBatch, monitor, monitorLayers, logprobs, noSharing,
        };
        var steering = new SteeringOptions();
        steering.AddShapeTo(command);
        command.SetAction(p => CliErrors.Run(() =>
        {
            if (p.GetValue(prompt) is null == p.GetValue(prompts) is null)
                throw new ArgumentException("give exactly one of --prompt TEXT or --prompts FILE");
            var sampling = new SamplingOptions(p.GetValue(temperature), p.GetValue(topP), p.GetValue(topK), p.GetValue(minP), p.GetValue(repetition));
            sampling.Validate();
            var sweepVectors = (p.GetValue(vectors) ?? []).Select(SweepVector.FromFile).ToList();
            int? hookLayer = steering.HookLayer(p);
            int[] steerLayers = p.GetValue(layers) is string l ? SweepValues.Layers(l) : hookLayer is { } hl ? [hl] : [];
            if (hookLayer is { } named && steerLayers.Any(x => x != named))
                throw new ArgumentException($"--hook {p.GetValue(steering.Hook)} names block {named}; --layers asks for {string.Join(",", steerLayers)}");
            int[] watchLayers = p.GetValue(monitorLayers) is string ml ? SweepValues.Layers(ml) : steerLayers;
            var monitors = (from monitorFile in p.GetValue(monitor) ?? []
                            let v = SweepVector.FromFile(monitorFile)
                            from layerIndex in watchLayers.Length > 0 ? watchLayers : throw new ArgumentException("--monitor needs --monitor-layers or --layers")
                            select new ProjectionMonitor($"{v.Name}@{layerIndex}", layerIndex, v.Vector.ForBlock(layerIndex))).ToList();
            var spec = new GenerateJobSpec
            {
                Prompts = p.GetValue(prompts) is string file
                    ? PromptSource.Read(file, p.GetValue(promptField)!, p.GetValue(idField)!)
                    : [new JobPrompt("0", p.GetValue(prompt)!)],
                Vectors = sweepVectors,
                Layers = steerLayers,
                Monitors = monitors,
                Logprobs = p.GetValue(logprobs),
                Multipliers = SweepValues.Multipliers(p.GetValue(multipliers)!),
                SystemPrompt = p.GetValue(system),
                ChatTemplate = !p.GetValue(raw),
                SamplesPerPrompt = p.GetValue(samples),
                MaxNewTokens = p.GetValue(maxNew),
                Sampling = sampling,
                StopStrings = p.GetValue(stop) is { Length: > 0 } s ? s : null,
                Seed = p.GetValue(seed),
                Shard = Shard.Parse(p.GetValue(shard)!),
                Scheduler = new SchedulerOptions(MaxSequences: Math.Max(1, p.GetValue(maxBatch)), SharePrefixes: !p.GetValue(noSharing)),
            };
            using LanguageModel lm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(kernels)!), p.GetValue(backend)!, p.GetValue(tp));
            spec = spec with { Steering = steering.Shape(p, lm.Config) };
            if (spec.Steering.Template.Condition is not null && sweepVectors.Count == 0)
                throw new ArgumentException("--condition decides whether the --vector steering applies; give --vector");
            if (p.GetValue(output) is string outPath) return RunJob(lm, spec, outPath, p.GetValue(resume));
            return PrintQuick(lm, spec);
        }));
        return command;
    }

    /// <summary>Without --out: stream one sample to the terminal, or list several.</summary>
    static int PrintQuick(LanguageModel lm, GenerateJobSpec spec)
    {
        JobPrompt prompt = spec.Prompts[0];
        int[] ids = lm.EncodePrompt(prompt.Text, spec.SystemPrompt, spec.ChatTemplate);
        var combos = spec.Vectors.Count == 0
            ? [(Layer: -1, Multiplier: 0f, Vector: (SweepVector?)null)]
            : (from v in spec.Vectors from l in spec.Layers from m in spec.Multipliers select (Layer: l, Multiplier: m, Vector: (SweepVector?)v)).ToList();
        var requests = (from c in combos
                        from s in Enumerable.Range(0, spec.SamplesPerPrompt)
                        select new GenerationRequest(ids, spec.MaxNewTokens, spec.Sampling,
                            c.Vector is null ? null : [spec.Steering.Term(c.Layer, c.Vector.Vector.ForBlock(c.Layer), c.Multiplier)],
                            SplitMix64.Hash(spec.Seed ^ SplitMix64.Hash((ulong)s)), lm.Tokenizer.EosTokenIds)
                        { StopStrings = spec.StopStrings, Tag = new QuickTag(c.Layer, c.Multiplier, c.Vector, s) }).ToList();
        var generator = new Generator(lm.Model, lm.Tokenizer, spec.Scheduler);
        if (requests.Count == 1)
        {
            // Decode the whole response each step and print what is new, so multi-byte characters split across tokens print whole.
            var tokens = new List<int>();
            string shown = "";
            var results = generator.Generate(requests, (_, token) =>
            {
                tokens.Add(token);
                string text = lm.Tokenizer.Decode(tokens.ToArray(), skipSpecialTokens: true);
                if (text.Length > shown.Length && !text.EndsWith('\uFFFD')) { Console.Write(text[shown.Length..]); shown = text; }
            });
            Console.WriteLine();
            if (results[0].Conditions is [var outcome, ..]) Console.Error.WriteLine(ConditionLabel(outcome));
            return 0;
        }
        foreach (GenerationResult r in generator.Generate(requests))
        {
            var t = (QuickTag)r.Tag!;
            string label = t.Vector is null ? $"sample {t.Sample}" : $"{t.Vector.Name} L{t.Layer} ×{t.Multiplier:0.###} sample {t.Sample}";
            if (r.Conditions is [var outcome, ..]) label += $", {ConditionLabel(outcome)}";
            Console.WriteLine($"[{label}] {r.Text}");
        }
        return 0;
    }

    static string ConditionLabel(ConditionOutcome o) => $"condition {(o.Met ? "met" : "not met")} (score {o.Score:0.0000})";

    sealed record QuickTag(int Layer, float Multiplier, SweepVector? Vector, int Sample);

    static int RunJob(LanguageModel lm, GenerateJobSpec spec, string outPath, bool resume)
    {
        JobSummary summary = null!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("generating", maxValue: Math.Max(1, GenerateJob.CountItems(spec) / spec.Shard.Count + 1));
                summary = GenerateJob.Run(lm, spec, outPath, resume, pr =>
                {
                    double seconds = Math.Max(1e-3, pr.Elapsed.TotalSeconds);
                    task.MaxValue = Math.Max(1, pr.Total);
                    task.Value = pr.Done;
                    task.Description = $"generating {pr.Done}/{pr.Total} · {(pr.Done - pr.Skipped) / seconds:0.0} samples/s · {pr.GeneratedTokens / seconds:0} tok/s";
                });
                task.Value = task.MaxValue;
            });
        Console.WriteLine($"wrote {summary.Written} records to {outPath} ({summary.Skipped} already there, {summary.Total} in shard {spec.Shard}); " +
                          $"{summary.GeneratedTokens} tokens in {summary.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }
}
