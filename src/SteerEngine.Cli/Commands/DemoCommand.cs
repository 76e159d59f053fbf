using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer demo</c>: a steered multiplier sweep on a generated <c>tiny</c> random-weight model. The
/// vector is the unembedding row of a target word, added at the last block's output; the table
/// shows how often the model then emits that word. Every multiplier runs as one row of the same batch.
/// </summary>
public static class DemoCommand
{
    const string TargetWord = " happy";
    static readonly string[] Prompts = ["Tell me about your day.", "What is the weather like?", "Describe a city.", "Write a short story."];

    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "model directory (default: a tiny random model, generated on first use)" };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact (the f32 reference path)", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu (the CUDA backend on the CPU emulator)", DefaultValueFactory = _ => "cpu" };
        var tp = new Option<int>("--tp") { Description = "tensor-parallel devices (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };
        var multipliers = new Option<string>("--multipliers") { Description = "comma-separated", DefaultValueFactory = _ => "0,4,6,8,12" };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 16 };
        var json = new Option<bool>("--json") { Description = "print one JSON object instead of the table" };
        var command = new Command("demo", "steered multiplier sweep on the default model") { model, kernels, backend, tp, multipliers, maxNew, json };
        command.SetAction(p => CliErrors.Run(() =>
        {
            float[] ms = ParseList(p.GetValue(multipliers)!);
            string dir = p.GetValue(model) ?? DefaultModel();
            using LanguageModel lm = LanguageModel.Load(dir, w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(kernels)!), p.GetValue(backend)!, p.GetValue(tp));
            var result = Sweep(lm, ms, p.GetValue(maxNew));
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { model = dir, target = TargetWord, multipliers = ms, trait_rate = result.Rates }));
            else
                Print(lm, ms, result);
            return 0;
        }));
        return command;
    }

    static float[] ParseList(string s)
    {
        try
        {
            return s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(x => float.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new ArgumentException($"--multipliers '{s}' is not a comma-separated list of numbers");
        }
    }

    static string DefaultModel()
    {
        string cache = Environment.GetEnvironmentVariable("STEER_CACHE")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "steerengine");
        string dir = Path.Combine(cache, "tiny-seed0");
        if (!File.Exists(Path.Combine(dir, "config.json")))
        {
            Console.Error.WriteLine($"generating the tiny demo model in {dir}");
            RandomModel.Write("tiny", 0, dir);
        }
        return dir;
    }

    sealed record SweepResult(double[] Rates, string[] Examples);

    static SweepResult Sweep(LanguageModel lm, float[] multipliers, int maxNewTokens)
    {
        int target = lm.Tokenizer.Encode(TargetWord, addBos: false).Single();
        var direction = new float[lm.Config.HiddenSize];
        lm.Transformer.Weights.LmHead.ReadRow(target, direction);
        int layer = lm.Config.NumLayers - 1;

        // One batch: every (multiplier, prompt) pair is its own row with its own steering.
        var requests = new List<GenerationRequest>();
        foreach (float m in multipliers)
            for (int i = 0; i < Prompts.Length; i++)
                requests.Add(new GenerationRequest(lm.EncodePrompt(Prompts[i]), maxNewTokens, new SamplingOptions(),
                    [new SteeringAdd(layer, direction, m, SteeringPositions.Response)], Seed: (ulong)i));
        var results = new Generator(lm.Model).Generate(requests);

        var rates = new double[multipliers.Length];
        var examples = new string[multipliers.Length];
        for (int k = 0; k < multipliers.Length; k++)
        {
            var rows = results.Skip(k * Prompts.Length).Take(Prompts.Length).ToList();
            rates[k] = rows.Sum(r => r.Tokens.Count(t => t == target)) / (double)rows.Sum(r => Math.Max(1, r.Tokens.Length));
            examples[k] = lm.Tokenizer.Decode(rows[0].Tokens, skipSpecialTokens: true);
        }
        return new SweepResult(rates, examples);
    }

    static void Print(LanguageModel lm, float[] multipliers, SweepResult r)
    {
        AnsiConsole.MarkupLine($"[bold]Steering toward '{TargetWord.Trim()}'[/] at block {lm.Config.NumLayers - 1} of {Markup.Escape(lm.Directory)}");
        AnsiConsole.MarkupLine("[grey]random-weight model: the vector is the word's unembedding row; the rate is the share of generated tokens that are the word[/]");
        var table = new Table().AddColumn("multiplier").AddColumn("target rate").AddColumn("example output (greedy)");
        for (int k = 0; k < multipliers.Length; k++)
            table.AddRow(multipliers[k].ToString("0.##"), r.Rates[k].ToString("P0"), Markup.Escape(Truncate(r.Examples[k], 60)));
        AnsiConsole.Write(table);
    }

    static string Truncate(string s, int n)
    {
        s = s.Replace("\n", "⏎");
        return s.Length <= n ? s : s[..n] + "…";
    }
}
