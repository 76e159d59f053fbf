using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Cli.Demo;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Training;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer demo</c>: on the trained demo model (models/demo), make a trait vector from contrastive
/// answers (by mean difference of hidden states, or by BiPO training), run a steered sweep over
/// multipliers as one batch, and report per multiplier the measured trait rate and coherence of the
/// outputs with an example each — as a table (or one JSON object) and a PNG plot.
/// </summary>
public static class DemoCommand
{
    const string MeanDiff = "mean-diff", Bipo = "bipo";
    const string MeanDiffMultipliers = "-8,-4,-2,-1,0,1,2,4,8", BipoMultipliers = "-2,-1,-0.5,0,0.5,1,2";

    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "model directory (default: the bundled demo model, models/demo)" };
        var trait = new Option<string>("--trait") { Description = "mood (toward happy) or formality (toward formal)", DefaultValueFactory = _ => "mood" };
        var layer = new Option<int?>("--layer") { Description = "decoder block to extract at and steer (default: the middle one)" };
        var method = new Option<string>("--method")
        {
            Description = $"how the vector is made: {MeanDiff} (mean difference of hidden states) or {Bipo} (BiPO training, a few seconds)",
            DefaultValueFactory = _ => MeanDiff,
        };
        var multipliers = new Option<string?>("--multipliers") { Description = $"comma-separated (default: {MeanDiffMultipliers} for {MeanDiff}, {BipoMultipliers} for {Bipo})" };
        var samples = new Option<int>("--samples") { Description = "samples per prompt and multiplier", DefaultValueFactory = _ => 8 };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 48 };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0 };
        var plot = new Option<string>("--plot") { Description = "where to write the PNG plot", DefaultValueFactory = _ => "demo_sweep.png" };
        var json = new Option<bool>("--json") { Description = "print one JSON object instead of the table" };
        var answers = new Option<string?>("--answers") { Description = "also write every sampled answer with its measures to this JSONL (e.g. for steer judge)" };
        var saveVector = new Option<string?>("--save-vector") { Description = "also write the vector it made to this file (.npy, .safetensors, .pt, .gguf), e.g. for steer serve --vector NAME=FILE" };
        var command = new Command("demo", "extract a trait vector on the demo model and sweep the steering multiplier")
        {
            model, trait, method, layer, multipliers, samples, maxNew, seed, plot, json, answers, saveVector,
        };
        command.SetAction(p => CliErrors.Run(() =>
        {
            string how = p.GetValue(method)!;
            if (how is not (MeanDiff or Bipo)) throw new ArgumentException($"--method '{how}': expected {MeanDiff} or {Bipo}");
            float[] ms = ParseList(p.GetValue(multipliers) ?? (how == Bipo ? BipoMultipliers : MeanDiffMultipliers));
            string dir = p.GetValue(model) ?? DemoModel.FindDirectory()
                ?? throw new DirectoryNotFoundException("models/demo: the demo model was not found beside the binaries or above them; pass --model or set " + DemoModel.DirectoryVariable);
            string traitName = p.GetValue(trait)!;
            DemoLanguage language = DemoModel.Language(dir);
            if (!language.Traits.TryGetValue(traitName, out var values))
                throw new ArgumentException($"--trait '{traitName}': expected one of {string.Join(", ", language.Traits.Keys)}");

            var clock = Stopwatch.StartNew();
            using LanguageModel lm = LanguageModel.Load(dir, w => Console.Error.WriteLine($"warning: {w}"));
            int block = p.GetValue(layer) ?? (lm.Config.NumLayers - 1) / 2;
            var pairs = TraitVector.ReadPairs(Path.Combine(dir, $"{traitName}_pairs.jsonl"));
            float[] vector = how == Bipo
                ? TraitVector.Bipo(lm, pairs, block, TraitVector.DemoBipoOptions)
                : TraitVector.MeanDifference(lm, pairs, block);
            if (p.GetValue(saveVector) is string vectorPath) VectorFile.Write(vectorPath, SteeringVector.Direction(vector, $"{traitName} at block {block} ({how})"));
            var points = TraitSweep.Run(lm, language, traitName, vector, block, ms, TraitSweep.DefaultPrompts,
                p.GetValue(samples), p.GetValue(maxNew), seed: p.GetValue(seed));

            if (p.GetValue(answers) is string answersPath)
                WriteAnswers(answersPath, points, language, traitName, p.GetValue(samples));
            string plotPath = p.GetValue(plot)!;
            string label = $"{traitName} rate ({values.Positive} share of {values.Positive}/{values.Negative} words)";
            SweepPlot.Save(plotPath, points, label, $"Steering the demo model toward '{values.Positive}' at block {block} ({how})");

            if (p.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    model = dir, trait = traitName, method = how, positive = values.Positive, layer = block,
                    vector_norm = Norm(vector), samples = p.GetValue(samples) * TraitSweep.DefaultPrompts.Length,
                    multipliers = ms,
                    trait_rate = points.Select(x => double.IsNaN(x.TraitRate) ? (double?)null : x.TraitRate),
                    coherence = points.Select(x => x.Coherence),
                    plot = plotPath,
                }));
            }
            else
            {
                Print(dir, traitName, values, block, how, vector, pairs.Count, points, plotPath, clock.Elapsed);
            }
            return 0;
        }));
        return command;
    }

    static float[] ParseList(string s)
    {
        try
        {
            float[] values = s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(x => float.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            return values.Length > 0 ? values : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new ArgumentException($"--multipliers '{s}' is not a comma-separated list of numbers");
        }
    }

    /// <summary>One JSONL record per sampled answer: multiplier, prompt, sample, text, and the program's measures of it.</summary>
    static void WriteAnswers(string path, IReadOnlyList<SweepPoint> points, DemoLanguage language, string trait, int samples)
    {
        using var w = new StreamWriter(path);
        foreach (SweepPoint point in points)
            for (int i = 0; i < point.Outputs.Count; i++)
            {
                string text = point.Outputs[i];
                DemoMeasure m = language.Measure(text);
                int prompt = i / samples, sample = i % samples;
                string m10 = point.Multiplier.ToString("R", CultureInfo.InvariantCulture);
                w.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["id"] = $"m{m10}#p{prompt}#s{sample}", ["question"] = TraitSweep.DefaultPrompts[prompt], ["response"] = text,
                    ["multiplier"] = point.Multiplier, ["sample_index"] = sample, [$"{trait}_rate"] = m.Rates[trait], ["coherence"] = m.Coherence,
                    ["sentences"] = m.Sentences,
                }));
            }
    }

    static double Norm(float[] v) => Math.Sqrt(v.Sum(x => (double)x * x));

    static void Print(string dir, string trait, (string Positive, string Negative) values, int block, string method, float[] vector, int pairs,
        IReadOnlyList<SweepPoint> points, string plotPath, TimeSpan elapsed)
    {
        AnsiConsole.MarkupLine($"[bold]Steering the demo model toward '{values.Positive}'[/] ({Markup.Escape(dir)})");
        BipoOptions o = TraitVector.DemoBipoOptions;
        string made = method == Bipo
            ? $"BiPO at block {block} ({o.Epochs} epochs, lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)}, β {o.Beta.ToString(CultureInfo.InvariantCulture)}), " +
              $"{values.Positive} answers chosen over {values.Negative} ones in {pairs} pairs"
            : $"mean difference of block {block} outputs over {pairs} {values.Positive}/{values.Negative} answer pairs";
        AnsiConsole.MarkupLine($"[grey]vector: {made}, " +
                               $"norm {Norm(vector):0.00}; added at every response position. {points[0].Outputs.Count} samples per multiplier (temperature 1).[/]");
        var table = new Table()
            .AddColumn("multiplier")
            .AddColumn(new TableColumn($"{trait} rate\n({values.Positive} share)").RightAligned())
            .AddColumn(new TableColumn("coherence").RightAligned())
            .AddColumn("example output");
        foreach (SweepPoint point in points)
            table.AddRow(point.Multiplier.ToString("0.##", CultureInfo.InvariantCulture),
                double.IsNaN(point.TraitRate) ? "-" : point.TraitRate.ToString("P0", CultureInfo.InvariantCulture),
                point.Coherence.ToString("P0", CultureInfo.InvariantCulture),
                Markup.Escape(Truncate(point.Outputs[0], 90)));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[grey]trait rate: {values.Positive} words among {values.Positive} and {values.Negative} words; " +
                               "coherence: complete sentences the demo grammar accepts.[/]");
        AnsiConsole.MarkupLine($"plot: {Markup.Escape(Path.GetFullPath(plotPath))}  ({elapsed.TotalSeconds:0.0} s)");
    }

    static string Truncate(string s, int n)
    {
        s = new string(s.Select(c => c == '\n' ? '⏎' : char.IsControl(c) ? '·' : c).ToArray());
        return s.Length <= n ? s : s[..n] + "…";
    }
}
