using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Server.Http;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>A loaded model and the engine all its requests share.</summary>
public sealed class ServedModel(string name, LanguageModel lm, GenerationEngine engine) : IDisposable
{
    public string Name { get; } = name;
    public LanguageModel Lm { get; } = lm;
    public GenerationEngine Engine { get; } = engine;
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public void Dispose()
    {
        Engine.Dispose();
        Lm.Dispose();
    }
}

/// <summary>A model alias whose requests are steered unless they say otherwise (for clients that cannot add body fields).</summary>
public sealed record SteeringPreset(string Alias, ServedModel Model, IReadOnlyList<SteeringAdd> Steering);

/// <summary>The served models and aliases by the names requests use in <c>model</c>.</summary>
public sealed class ModelCatalog : IDisposable
{
    readonly List<ServedModel> _models = [];
    readonly Dictionary<string, SteeringPreset> _presets = new(StringComparer.Ordinal);

    public IReadOnlyList<ServedModel> Models => _models;
    public IReadOnlyCollection<SteeringPreset> Presets => _presets.Values;

    public void Add(ServedModel model)
    {
        if (_models.Any(m => m.Name == model.Name) || _presets.ContainsKey(model.Name))
            throw new ArgumentException($"model name '{model.Name}' is given twice; use --model-name to tell them apart");
        _models.Add(model);
    }

    /// <summary>
    /// <c>ALIAS=VECTOR@LAYERxMULT[+VECTOR@LAYERxMULT...]</c>, steering the first model (e.g.
    /// <c>happy=mood@2x4</c>); the vector is a name from the library. Or <c>ALIAS=JSON</c>: a request's
    /// <c>steering</c> field (an object or a list), with every operation, position mode and condition it takes.
    /// </summary>
    public void AddPreset(string option, VectorLibrary vectors)
    {
        int eq = option.IndexOf('=');
        if (eq <= 0 || _models.Count == 0) throw new ArgumentException($"--preset '{option}': expected ALIAS=VECTOR@LAYERxMULT after a --model");
        string alias = option[..eq];
        if (_models.Any(m => m.Name == alias) || _presets.ContainsKey(alias)) throw new ArgumentException($"--preset '{option}': the name '{alias}' is taken");
        ServedModel model = _models[0];
        string spec = option[(eq + 1)..].Trim();
        if (spec.StartsWith('{') || spec.StartsWith('['))
        {
            _presets[alias] = new SteeringPreset(alias, model, JsonPreset(alias, spec, vectors, model));
            return;
        }
        var adds = new List<SteeringAdd>();
        foreach (string term in spec.Split('+'))
        {
            string[] parts = term.Split('@', 'x');
            if (parts.Length != 3 || !int.TryParse(parts[1], out int layer) || !float.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out float mult))
                throw new ArgumentException($"--preset '{option}': '{term}' is not VECTOR@LAYERxMULT");
            SteeringVector v = vectors.Find(parts[0]) ?? throw new ArgumentException($"--preset '{option}': no vector named '{parts[0]}'");
            adds.Add(new SteeringAdd(layer, v.ForBlock(layer), mult, SteeringPositions.All));
        }
        new SequenceSteering(adds, 1).Validate(model.Lm.Config.NumLayers, model.Lm.Config.HiddenSize);
        _presets[alias] = new SteeringPreset(alias, model, adds);
    }

    static IReadOnlyList<SteeringAdd> JsonPreset(string alias, string spec, VectorLibrary vectors, ServedModel model)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(spec);
            return SteeringSpec.Parse(doc.RootElement, vectors, model.Lm.Config) is { Count: > 0 } adds ? adds
                : throw new ArgumentException($"--preset '{alias}': the steering is empty");
        }
        catch (System.Text.Json.JsonException e) { throw new ArgumentException($"--preset '{alias}': not valid JSON ({e.Message})"); }
        catch (Http.ApiException e) { throw new ArgumentException($"--preset '{alias}': {e.Message}"); }
    }

    /// <summary>The model a request's <c>model</c> field names, and the alias's steering if it names a preset.</summary>
    public (ServedModel Model, IReadOnlyList<SteeringAdd>? Preset) Resolve(string? name)
    {
        if (name is null) throw ApiException.BadRequest("'model' is required", "model");
        if (_presets.TryGetValue(name, out SteeringPreset? p)) return (p.Model, p.Steering);
        ServedModel? m = _models.FirstOrDefault(m => m.Name == name);
        return m is not null ? (m, null)
            : throw ApiException.NotFound($"the model '{name}' does not exist; served: {string.Join(", ", _models.Select(x => x.Name).Concat(_presets.Keys))}", "model", "model_not_found");
    }

    public void Dispose()
    {
        foreach (ServedModel m in _models) m.Dispose();
    }
}
