using System.Text.Json;

namespace SteerEngine.Judging.Run;

/// <summary>US dollars per million tokens for one model; the Batch API bills a share of that (half at OpenAI).</summary>
public sealed record ModelPrice(double InputPerMillion, double OutputPerMillion, double BatchFactor = 0.5);

/// <summary>
/// The price list behind the progress bar's cost estimate: a JSON file
/// <c>{"models": {"gpt-4o-mini": {"input": 0.15, "output": 0.6, "batch_factor": 0.5}, ...}}</c>.
/// A model is looked up by its exact name, then by the longest listed name it starts with
/// (dated snapshots); an unlisted model has no estimate, and the local judge costs nothing.
/// </summary>
public sealed class Prices(IReadOnlyDictionary<string, ModelPrice> models)
{
    public static readonly Prices None = new(new Dictionary<string, ModelPrice>());

    public IReadOnlyDictionary<string, ModelPrice> Models => models;

    public static Prices Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: prices file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (!doc.RootElement.TryGetProperty("models", out var m) || m.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: expected {{\"models\": {{name: {{input, output}}}}}}");
            var d = new Dictionary<string, ModelPrice>();
            foreach (var p in m.EnumerateObject())
            {
                double Get(string key, double? fallback = null) =>
                    p.Value.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                        : fallback ?? throw new InvalidDataException($"{path}: model '{p.Name}' needs a number '{key}' (US$ per million tokens)");
                d[p.Name] = new ModelPrice(Get("input"), Get("output"), Get("batch_factor", 0.5));
            }
            return new Prices(d);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})");
        }
    }

    public ModelPrice? Find(string model)
    {
        if (models.TryGetValue(model, out var p)) return p;
        return models.Where(kv => model.StartsWith(kv.Key, StringComparison.Ordinal)).OrderByDescending(kv => kv.Key.Length)
            .Select(kv => (ModelPrice?)kv.Value).FirstOrDefault();
    }

    /// <summary>US$ for the tokens, or null when the model has no price.</summary>
    public double? Cost(string model, long promptTokens, long completionTokens, bool batch = false)
    {
        if (Find(model) is not ModelPrice p) return null;
        double c = (promptTokens * p.InputPerMillion + completionTokens * p.OutputPerMillion) / 1e6;
        return batch ? c * p.BatchFactor : c;
    }
}
