using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Capture;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer extract</c>: per-layer steering vectors from activations.
/// <c>--mode persona</c> reads persona-vectors CSV pairs and keeps the effective ones;
/// <c>--mode diff</c> contrasts two JSONL response sets. Writes <c>NAME_{prompt_avg,response_avg,prompt_last}_diff</c>
/// as [layers+1, H] .pt and .safetensors.
/// </summary>
public static class ExtractCommand
{
    static readonly (Reduction Reduction, string Name)[] Outputs =
        [(Reduction.PromptAvg, "prompt_avg"), (Reduction.ResponseAvg, "response_avg"), (Reduction.PromptLast, "prompt_last")];

    public static Command Create()
    {
        var model = new Option<string>("--model") { Required = true, Description = "model directory" };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact (the f32 reference path)", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu (the CUDA backend on the CPU emulator)", DefaultValueFactory = _ => "cpu" };
        var tp = new Option<int>("--tp") { Description = "tensor-parallel devices (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };
        var mode = new Option<string>("--mode") { Description = "persona | diff", DefaultValueFactory = _ => "persona" };
        var pos = new Option<string?>("--pos") { Description = "persona mode: positive CSV" };
        var neg = new Option<string?>("--neg") { Description = "persona mode: negative CSV" };
        var trait = new Option<string?>("--trait") { Description = "persona mode: the trait's score column; also the output name" };
        var threshold = new Option<double>("--threshold") { Description = "persona mode: a pair counts when the positive's trait score is ≥ this and the negative's < 100 − this (both coherence ≥ 50)", DefaultValueFactory = _ => 50 };
        var a = new Option<string?>("--a") { Description = "diff mode: JSONL of the positive set (fields response and prompt or question)" };
        var b = new Option<string?>("--b") { Description = "diff mode: JSONL of the negative set" };
        var name = new Option<string?>("--name") { Description = "diff mode: output name (default: diff)" };
        var system = new Option<string?>("--system") { Description = "diff mode: system prompt for `question` fields" };
        var method = new Option<string>("--method") { Description = "mean-diff | pca", DefaultValueFactory = _ => "mean-diff" };
        var output = new Option<string>("--out") { Required = true, Description = "output directory" };
        var report = new Option<bool>("--report") { Description = "print per-layer separation to help pick a layer" };
        var batch = new Option<int>("--batch-size") { Description = "sequences per forward pass", DefaultValueFactory = _ => 8 };
        var condition = new Option<bool>("--condition") { Description = "a CAST condition vector from two prompt sets (--a: prompts that meet it, --b: prompts that do not) and the best layer and threshold" };
        var promptField = new Option<string>("--prompt-field") { Description = "--condition: the prompts' text field (.jsonl or .csv)", DefaultValueFactory = _ => "question" };
        var layers = new Option<string?>("--layers") { Description = "--condition: blocks to search, 1,2 or 0:3 (default: all)" };
        var raw = new Option<bool>("--raw") { Description = "--condition: prompts as plain text, without the chat template" };
        var command = new Command("extract", "extract per-layer steering vectors (mean difference or PCA), or a CAST condition (--condition)")
            { model, kernels, backend, tp, mode, pos, neg, trait, threshold, a, b, name, system, method, output, report, batch, condition, promptField, layers, raw };
        command.SetAction(p => CliErrors.Run(() =>
        {
            if (p.GetValue(condition))
            {
                string setA = p.GetValue(a) ?? throw new ArgumentException("--condition needs --a (prompts that meet the condition)");
                string setB = p.GetValue(b) ?? throw new ArgumentException("--condition needs --b (prompts that do not)");
                int[]? searched = p.GetValue(layers) is string text ? Generation.Jobs.SweepValues.Layers(text) : null;
                using LanguageModel clm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(kernels)!), p.GetValue(backend)!, p.GetValue(tp));
                return ExtractCondition.Run(clm, setA, setB, p.GetValue(promptField)!, p.GetValue(system), p.GetValue(raw),
                    p.GetValue(name) ?? "condition", p.GetValue(output)!, searched);
            }
            ExtractionMethod m = p.GetValue(method) switch
            {
                "mean-diff" or "diff" => ExtractionMethod.MeanDiff,
                "pca" => ExtractionMethod.Pca,
                var other => throw new ArgumentException($"--method '{other}' is not mean-diff or pca"),
            };
            using LanguageModel lm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(kernels)!), p.GetValue(backend)!, p.GetValue(tp));
            List<CaptureExample> positive, negative;
            string outName;
            switch (p.GetValue(mode))
            {
                case "persona":
                    string traitName = p.GetValue(trait) ?? throw new ArgumentException("--mode persona needs --trait");
                    var pairs = PersonaPairs.Load(p.GetValue(pos) ?? throw new ArgumentException("--mode persona needs --pos"),
                        p.GetValue(neg) ?? throw new ArgumentException("--mode persona needs --neg"), traitName, p.GetValue(threshold));
                    Console.Error.WriteLine($"{pairs.Effective.Count} effective pairs of {pairs.Positive.Count} ({pairs.MissingScores} with missing scores)");
                    if (pairs.Effective.Count == 0) throw new InvalidDataException("no effective pairs: nothing passes the trait and coherence thresholds");
                    positive = pairs.Effective.Select(i => PersonaPairs.Capture(lm.Tokenizer, pairs.Positive[i])).ToList();
                    negative = pairs.Effective.Select(i => PersonaPairs.Capture(lm.Tokenizer, pairs.Negative[i])).ToList();
                    outName = traitName;
                    break;
                case "diff":
                    positive = ReadJsonl(lm, p.GetValue(a) ?? throw new ArgumentException("--mode diff needs --a"), p.GetValue(system));
                    negative = ReadJsonl(lm, p.GetValue(b) ?? throw new ArgumentException("--mode diff needs --b"), p.GetValue(system));
                    outName = p.GetValue(name) ?? "diff";
                    break;
                default:
                    throw new ArgumentException($"--mode '{p.GetValue(mode)}' is not persona or diff");
            }

            var reductions = Outputs.Select(o => o.Reduction).ToList();
            List<Dictionary<Reduction, float[][]>> posActs = null!, negActs = null!;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("capturing activations", maxValue: positive.Count + negative.Count);
                    posActs = ActivationCollector.Collect(lm.Model, positive, reductions, p.GetValue(batch), n => task.Value = n);
                    negActs = ActivationCollector.Collect(lm.Model, negative, reductions, p.GetValue(batch), n => task.Value = positive.Count + n);
                });

            string dir = p.GetValue(output)!;
            Directory.CreateDirectory(dir);
            var table = new Table().AddColumn("entry (block)");
            var norms = new List<double[]>();
            foreach (var (reduction, rname) in Outputs)
            {
                float[][] rows = VectorExtraction.Extract(posActs.Select(x => x[reduction]).ToList(), negActs.Select(x => x[reduction]).ToList(), m);
                var vector = SteeringVector.PerLayerSet(rows, rname);
                foreach (string ext in new[] { ".pt", ".safetensors" })
                    VectorFile.Write(Path.Combine(dir, $"{outName}_{rname}_diff{ext}"), vector);
                norms.Add(rows.Select(r => Math.Sqrt(r.Sum(x => (double)x * x))).ToArray());
                table.AddColumn($"‖{rname}‖");
            }
            double[]? separation = p.GetValue(report)
                ? VectorExtraction.Separation(posActs.Select(x => x[Reduction.ResponseAvg]).ToList(), negActs.Select(x => x[Reduction.ResponseAvg]).ToList())
                : null;
            if (separation is not null) table.AddColumn("separation (response_avg)");
            for (int e = 0; e < norms[0].Length; e++)
            {
                var cells = new List<string> { e == 0 ? "0 (embeddings)" : $"{e} (block {e - 1})" };
                cells.AddRange(norms.Select(n => n[e].ToString("0.###")));
                if (separation is not null) cells.Add(separation[e].ToString("0.00"));
                table.AddRow(cells.ToArray());
            }
            AnsiConsole.Write(table);
            Console.WriteLine($"wrote {outName}_{{prompt_avg,response_avg,prompt_last}}_diff.{{pt,safetensors}} to {dir} ({positive.Count} pairs, {p.GetValue(method)})");
            return 0;
        }));
        return command;
    }

    static List<CaptureExample> ReadJsonl(LanguageModel lm, string path, string? system)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found");
        var list = new List<CaptureExample>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement o;
            try { o = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new InvalidDataException($"{path}:{lineNo}: not valid JSON ({e.Message})"); }
            if (!o.TryGetProperty("response", out var r) || r.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}:{lineNo}: needs a string field 'response'");
            string prompt = o.TryGetProperty("prompt", out var pr) && pr.ValueKind == JsonValueKind.String ? pr.GetString()!
                : o.TryGetProperty("question", out var q) && q.ValueKind == JsonValueKind.String ? lm.FormatChat(q.GetString()!, system)
                : throw new InvalidDataException($"{path}:{lineNo}: needs a string field 'prompt' (formatted) or 'question'");
            int[] tokens = lm.Tokenizer.Encode(prompt + r.GetString(), addBos: false);
            int promptLength = lm.Tokenizer.Encode(prompt, addBos: false).Length;
            if (promptLength >= tokens.Length) throw new InvalidDataException($"{path}:{lineNo}: the response adds no tokens to the prompt");
            list.Add(new CaptureExample(tokens, promptLength));
        }
        if (list.Count == 0) throw new InvalidDataException($"{path}: no examples");
        return list;
    }
}
