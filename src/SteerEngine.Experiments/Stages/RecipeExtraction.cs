using System.Text.Json;
using SteerEngine.Capture;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Experiments.Stages;

/// <summary>
/// What an extract: recipe gives one model: a direction per hidden-state entry (HF numbering: entry i is the output of
/// block i-1) and how well each separates the two sets, from <see cref="Pairs"/> effective pairs.
/// </summary>
public sealed record ExtractedDirections(float[][] Directions, double[] Separation, int Pairs, int Rows); // Directions: (layers+1, H)

/// <summary>
/// The train stage of an extraction study: the recipe's effective persona pairs run through the model once, their
/// activations reduced (response_avg by default, persona-vectors' steering choice) and turned into per-layer
/// directions by <see cref="VectorExtraction"/>. Layer L's vector is entry L+1, the output of block L, so it steers
/// where it was read. It is written as <c>vec_ep1_layer{L}.pt</c> (and .safetensors), f32 [H] like a BiPO epoch's,
/// with <c>extraction.json</c> beside it; the .pt is renamed into place last and marks the item done.
/// </summary>
public static class RecipeExtraction
{
    public const string InfoFileName = "extraction.json";

    public static ExtractedDirections Extract(LanguageModel lm, ExtractionRecipe recipe)
    {
        var pairs = PersonaPairs.Load(recipe.Positive, recipe.Negative, recipe.Trait, recipe.Threshold);
        List<float[][]> Activations(IReadOnlyList<PersonaExample> rows, string file) =>
            ActivationCollector.Collect(lm.Model, pairs.Effective.Select(i => Capture(lm, rows[i], file)).ToList(), [recipe.Reduction], recipe.BatchSize)
                .Select(r => r[recipe.Reduction]).ToList();
        var positive = Activations(pairs.Positive, recipe.Positive);
        var negative = Activations(pairs.Negative, recipe.Negative);
        return new ExtractedDirections(VectorExtraction.Extract(positive, negative, recipe.Method), VectorExtraction.Separation(positive, negative),
            pairs.Effective.Count, pairs.Positive.Count);
    }

    static CaptureExample Capture(LanguageModel lm, PersonaExample x, string file)
    {
        try { return PersonaPairs.Capture(lm.Tokenizer, x); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{file}:{e.Message}"); }
    }

    /// <summary>Writes layer <paramref name="layer"/>'s vector and its note into <paramref name="vectorDir"/>, the .pt last.</summary>
    public static void Write(ExtractedDirections d, ExtractionRecipe recipe, string model, int layer, string vectorDir)
    {
        CheckLayer(d.Directions.Length - 1, layer, model);
        float[] direction = d.Directions[layer + 1];
        double norm = Math.Sqrt(direction.Sum(x => (double)x * x));
        // Files go to a work folder first and are renamed into place: the .pt, the item's done mark, last.
        string work = Path.Combine(vectorDir, $".extracting.{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        var vector = SteeringVector.Direction(direction, $"{recipe.MethodName} {recipe.ReductionName} layer {layer}");
        string pt = Training.BipoTrainer.VectorPath(vectorDir, 1, layer), safetensors = Training.BipoTrainer.VectorPath(vectorDir, 1, layer, ".safetensors");
        VectorFile.Write(Path.Combine(work, Path.GetFileName(safetensors)), vector);
        VectorFile.Write(Path.Combine(work, Path.GetFileName(pt)), vector);
        AtomicFile.WriteAllText(Path.Combine(vectorDir, InfoFileName), JsonSerializer.Serialize(new
        {
            layer, epoch = 1, method = recipe.MethodName, reduction = recipe.ReductionName, trait = recipe.Trait, threshold = recipe.Threshold,
            positive = recipe.Positive, negative = recipe.Negative, effective_pairs = d.Pairs, rows = d.Rows, norm, separation = d.Separation[layer + 1],
            vector = Path.GetFileName(pt),
        }, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(Path.Combine(work, Path.GetFileName(safetensors)), safetensors, overwrite: true);
        File.Move(Path.Combine(work, Path.GetFileName(pt)), pt, overwrite: true);
        Directory.Delete(work, recursive: true);
    }

    /// <summary>The blocks extraction can read: the last entry is the output after the final norm (HF replaces the last block's output there).</summary>
    public static void CheckLayer(int blocks, int layer, string model)
    {
        if (layer >= blocks - 1)
            throw new ArgumentException($"layer {layer}: model '{model}' has {blocks} blocks, and extraction reads blocks 0..{blocks - 2} (the last block's output is only seen after the final norm)");
    }

    /// <summary>Work folders a killed extraction left in <paramref name="vectorDir"/>; called by the item's new owner.</summary>
    public static void RemoveLeftovers(string vectorDir)
    {
        if (!Directory.Exists(vectorDir)) return;
        foreach (string dir in Directory.EnumerateDirectories(vectorDir, ".extracting.*")) Directory.Delete(dir, recursive: true);
    }
}
