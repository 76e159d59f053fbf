using System.Text.Json;
using System.Text.Json.Nodes;

namespace SteerEngine.Model;

public enum ModelArch { Llama, Qwen3 }

/// <summary>Llama 3 frequency scaling of RoPE (HF <c>rope_scaling</c> with <c>rope_type: "llama3"</c>).</summary>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings);

/// <summary>
/// The fields of a Hugging Face <c>config.json</c> the engine needs, for Llama 3.x and Qwen3.
/// Every required field is checked on load; a missing or wrong one names the file and the field.
/// </summary>
public sealed class ModelConfig
{
    public required ModelArch Arch { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required double RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    public Llama3RopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 131072;
    public int? BosTokenId { get; init; }
    public int[] EosTokenIds { get; init; } = [];
    public string TorchDtype { get; init; } = "bfloat16";

    public int QDim => NumHeads * HeadDim;
    public int KvDim => NumKvHeads * HeadDim;
    public string ModelType => Arch == ModelArch.Llama ? "llama" : "qwen3";

    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: file not found (a model directory needs config.json)");
        return Parse(File.ReadAllText(path), path);
    }

    public static ModelConfig Parse(string json, string source)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json) as JsonObject ?? throw new ModelFormatException($"{source}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{source}: not valid JSON ({e.Message})");
        }

        string modelType = Str(root, "model_type", source);
        ModelArch arch = modelType switch
        {
            "llama" => ModelArch.Llama,
            "qwen3" => ModelArch.Qwen3,
            _ => throw new ModelFormatException($"{source}: model_type '{modelType}' is not supported (expected 'llama' or 'qwen3')"),
        };

        int hidden = PositiveInt(root, "hidden_size", source);
        int heads = PositiveInt(root, "num_attention_heads", source);
        int kvHeads = root.ContainsKey("num_key_value_heads") ? PositiveInt(root, "num_key_value_heads", source) : heads;
        if (heads % kvHeads != 0)
            throw new ModelFormatException($"{source}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        int headDim;
        if (root["head_dim"] is not null) headDim = PositiveInt(root, "head_dim", source);
        else if (hidden % heads != 0) throw new ModelFormatException($"{source}: head_dim is missing and hidden_size {hidden} is not divisible by num_attention_heads {heads}");
        else headDim = hidden / heads;
        if (headDim % 2 != 0) throw new ModelFormatException($"{source}: head_dim {headDim} must be even for rotary embeddings");

        var config = new ModelConfig
        {
            Arch = arch,
            HiddenSize = hidden,
            IntermediateSize = PositiveInt(root, "intermediate_size", source),
            NumLayers = PositiveInt(root, "num_hidden_layers", source),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = PositiveInt(root, "vocab_size", source),
            RmsNormEps = PositiveDouble(root, "rms_norm_eps", source),
            RopeTheta = root.ContainsKey("rope_theta") ? PositiveDouble(root, "rope_theta", source) : 10000.0,
            RopeScaling = ParseRopeScaling(root["rope_scaling"], source),
            TieWordEmbeddings = root["tie_word_embeddings"]?.GetValueKind() == JsonValueKind.True,
            MaxPositionEmbeddings = root.ContainsKey("max_position_embeddings") ? PositiveInt(root, "max_position_embeddings", source) : 131072,
            BosTokenId = root["bos_token_id"] is JsonValue b && b.TryGetValue(out int bos) ? bos : null,
            EosTokenIds = ParseIds(root["eos_token_id"]),
            TorchDtype = root["torch_dtype"]?.GetValue<string>() ?? root["dtype"]?.GetValue<string>() ?? "bfloat16",
        };
        return config;
    }

    static Llama3RopeScaling? ParseRopeScaling(JsonNode? node, string source)
    {
        if (node is null) return null;
        if (node is not JsonObject o) throw new ModelFormatException($"{source}: rope_scaling must be an object or null");
        string type = o["rope_type"]?.GetValue<string>() ?? o["type"]?.GetValue<string>()
            ?? throw new ModelFormatException($"{source}: rope_scaling has no rope_type");
        if (type == "default") return null;
        if (type != "llama3")
            throw new ModelFormatException($"{source}: rope_scaling type '{type}' is not supported (expected 'llama3')");
        return new Llama3RopeScaling(
            PositiveDouble(o, "factor", source, "rope_scaling."),
            PositiveDouble(o, "low_freq_factor", source, "rope_scaling."),
            PositiveDouble(o, "high_freq_factor", source, "rope_scaling."),
            PositiveInt(o, "original_max_position_embeddings", source, "rope_scaling."));
    }

    static int[] ParseIds(JsonNode? node) => node switch
    {
        JsonArray a => a.Select(x => x!.GetValue<int>()).ToArray(),
        JsonValue v when v.TryGetValue(out int id) => [id],
        _ => [],
    };

    static string Str(JsonObject o, string field, string source)
    {
        if (o[field] is not JsonValue v || !v.TryGetValue(out string? s))
            throw new ModelFormatException($"{source}: missing or non-string field '{field}'");
        return s;
    }

    static int PositiveInt(JsonObject o, string field, string source, string prefix = "")
    {
        if (o[field] is not JsonValue v) throw new ModelFormatException($"{source}: missing field '{prefix}{field}'");
        // Some exporters write integers as 4096.0; accept any integral value.
        if (v.TryGetValue(out double d) && d == Math.Floor(d) && d is > 0 and <= int.MaxValue) return (int)d;
        throw new ModelFormatException($"{source}: field '{prefix}{field}' must be a positive integer, got {v.ToJsonString()}");
    }

    static double PositiveDouble(JsonObject o, string field, string source, string prefix = "")
    {
        if (o[field] is not JsonValue v) throw new ModelFormatException($"{source}: missing field '{prefix}{field}'");
        if (!v.TryGetValue(out double x) || !(x > 0) || double.IsInfinity(x))
            throw new ModelFormatException($"{source}: field '{prefix}{field}' must be a positive number, got {v.ToJsonString()}");
        return x;
    }

    /// <summary>The HF config.json text for this configuration (used by <c>steer model init</c>).</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Arch == ModelArch.Llama ? "LlamaForCausalLM" : "Qwen3ForCausalLM"),
            ["model_type"] = ModelType,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKvHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = VocabSize,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["hidden_act"] = "silu",
            ["attention_bias"] = false,
            ["torch_dtype"] = TorchDtype,
        };
        if (RopeScaling is { } r)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = r.Factor,
                ["low_freq_factor"] = r.LowFreqFactor,
                ["high_freq_factor"] = r.HighFreqFactor,
                ["original_max_position_embeddings"] = r.OriginalMaxPositionEmbeddings,
            };
        if (BosTokenId is int bos) o["bos_token_id"] = bos;
        if (EosTokenIds.Length == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Length > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(i => (JsonNode)i).ToArray());
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
