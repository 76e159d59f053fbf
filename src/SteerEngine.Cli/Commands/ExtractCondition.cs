using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Capture;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer extract --condition</c>: a CAST condition vector per layer from two labelled prompt sets (A: the
/// prompts that should meet the condition, B: those that should not), and the grid search over layer ×
/// threshold × comparator that splits them best (<see cref="ConditionSearch"/>). Writes NAME.pt and
/// NAME.safetensors ([layers+1, hidden]) and NAME.json (the best split and every layer's), prints a table.
/// </summary>
public static class ExtractCondition
{
    public static int Run(LanguageModel lm, string setA, string setB, string promptField, string? system, bool raw,
        string name, string outDir, int[]? layers)
    {
        int[][] a = Encode(lm, setA, promptField, system, raw), b = Encode(lm, setB, promptField, system, raw);
        ConditionSearchResult result = ConditionSearch.Run(lm.Model, a, b, layers: layers);

        Directory.CreateDirectory(outDir);
        var vector = SteeringVector.PerLayerSet(result.Vectors, name);
        foreach (string ext in new[] { ".pt", ".safetensors" })
            VectorFile.Write(Path.Combine(outDir, name + ext), vector);
        string json = Path.Combine(outDir, name + ".json");
        File.WriteAllText(json, JsonSerializer.Serialize(new
        {
            a = setA, b = setB, prompts_a = a.Length, prompts_b = b.Length,
            best = Row(result.Best),
            layers = result.PerLayer.Select(Row).ToArray(),
        }, new JsonSerializerOptions { WriteIndented = true }) + "\n");

        var table = new Table().AddColumns("block", "threshold", "comparator", "F1", "precision", "recall", "accuracy", "margin");
        foreach (ConditionSplit s in result.PerLayer)
            table.AddRow(s.Layer.ToString(CultureInfo.InvariantCulture), s.Threshold.ToString("0.#####", CultureInfo.InvariantCulture), s.ComparatorName,
                s.F1.ToString("0.000", CultureInfo.InvariantCulture), s.Precision.ToString("0.000", CultureInfo.InvariantCulture),
                s.Recall.ToString("0.000", CultureInfo.InvariantCulture), s.Accuracy.ToString("0.000", CultureInfo.InvariantCulture),
                s.Margin.ToString("0.000", CultureInfo.InvariantCulture));
        AnsiConsole.Write(table);
        ConditionSplit best = result.Best;
        Console.WriteLine(FormattableString.Invariant(
            $"best: --condition-layer {best.Layer} --condition-threshold {best.Threshold:R} --condition-comparator {best.ComparatorName} (F1 {best.F1:0.000} on {a.Length} + {b.Length} prompts)"));
        Console.WriteLine($"wrote {name}.pt, {name}.safetensors ([{result.Vectors.Length}, {lm.Config.HiddenSize}]) and {name}.json to {outDir}");
        return 0;
    }

    static object Row(ConditionSplit s) => new
    {
        layer = s.Layer, threshold = s.Threshold, comparator = s.ComparatorName,
        f1 = s.F1, precision = s.Precision, recall = s.Recall, accuracy = s.Accuracy, margin = s.Margin,
    };

    static int[][] Encode(LanguageModel lm, string path, string field, string? system, bool raw) =>
        PromptSource.Read(path, field).Select(p => lm.EncodePrompt(p.Text, p.System ?? system, !raw)).ToArray();
}
