using System.Runtime.InteropServices;
using System.Text.Json;
using SteerEngine.Server.Http;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>
/// The request's <c>steering</c> field: <c>false</c> (the unsteered baseline, also dropping a model
/// alias's preset), one add, or a list of adds, each
/// <c>{"vector": NAME | [floats], "vector_base64": f32 little-endian, "layer": L, "multiplier": M, "positions": "all|prompt|response"}</c>.
/// Unknown fields are refused; sizes, layers and finiteness are checked against the model.
/// </summary>
public static class SteeringSpec
{
    /// <returns>null when the field is absent (the preset, if any, applies); an empty list for <c>false</c>.</returns>
    public static IReadOnlyList<SteeringAdd>? Parse(JsonElement? steering, VectorLibrary vectors, Model.ModelConfig config)
    {
        if (steering is not { } s) return null;
        if (s.ValueKind == JsonValueKind.False) return [];
        var items = s.ValueKind switch
        {
            JsonValueKind.Array => s.EnumerateArray().ToList(),
            JsonValueKind.Object => [s],
            _ => throw ApiException.BadRequest($"'steering' must be false, an object or a list of objects, not {RequestFields.Kind(s)}", "steering"),
        };
        return items.Select((item, i) => ParseAdd(RequestFields.Of(item, "a steering entry", $"steering[{i}]."), vectors, config)).ToList();
    }

    static SteeringAdd ParseAdd(RequestFields f, VectorLibrary vectors, Model.ModelConfig config)
    {
        int layer = (int)(f.Integer("layer", 0, config.NumLayers - 1) ?? throw ApiException.BadRequest($"'{f.Name("layer")}' is required", f.Name("layer")));
        float multiplier = (float)(f.Number("multiplier", -1e6, 1e6) ?? 1.0);
        string positionsText = f.String("positions") ?? "all";
        SteeringPositions positions = positionsText switch
        {
            "all" or "prompt" or "response" => SteeringPositionsExtensions.Parse(positionsText),
            _ => throw ApiException.BadRequest($"'{f.Name("positions")}' is '{positionsText}'; it must be all, prompt or response", f.Name("positions")),
        };
        JsonElement? vector = f.Get("vector");
        string? base64 = f.String("vector_base64");
        f.RejectUnread();
        if (vector is null == base64 is null)
            throw ApiException.BadRequest($"give exactly one of '{f.Name("vector")}' and '{f.Name("vector_base64")}'", f.Name("vector"));

        float[] values = base64 is not null ? FromBase64(base64, f.Name("vector_base64")) : vector!.Value.ValueKind switch
        {
            JsonValueKind.String => Named(vector.Value.GetString()!, layer, vectors, f.Name("vector")),
            JsonValueKind.Array => FromList(vector.Value, f.Name("vector")),
            _ => throw f.Wrong("vector", vector.Value, "a vector name or a list of numbers"),
        };
        if (values.Length != config.HiddenSize)
            throw ApiException.BadRequest($"'{f.Name("vector")}' has {values.Length} elements; the model's hidden size is {config.HiddenSize}", f.Name("vector"));
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) throw ApiException.BadRequest($"'{f.Name("vector")}' element {i} is {values[i]}; vectors must be finite", f.Name("vector"));
        return new SteeringAdd(layer, values, multiplier, positions);
    }

    static float[] Named(string name, int layer, VectorLibrary vectors, string param)
    {
        SteeringVector v = vectors.Find(name) ?? throw ApiException.BadRequest($"'{param}': no steering vector named '{name}' (GET /v1/steering/vectors lists them)", param, "vector_not_found");
        if (v.PerLayer && layer + 1 >= v.Rows)
            throw ApiException.BadRequest($"'{param}': per-layer vector '{name}' has {v.Rows} rows; layer {layer} needs row {layer + 1}", param);
        return v.ForBlock(layer);
    }

    public static float[] FromList(JsonElement array, string param)
    {
        var values = new float[array.GetArrayLength()];
        int i = 0;
        foreach (JsonElement x in array.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number) throw ApiException.BadRequest($"'{param}' element {i} is {RequestFields.Kind(x)}, not a number", param);
            if (!x.TryGetDouble(out double d) || !float.IsFinite((float)d)) throw ApiException.BadRequest($"'{param}' element {i} is not a finite float32", param);
            values[i++] = (float)d;
        }
        return values;
    }

    public static float[] FromBase64(string text, string param)
    {
        byte[] bytes;
        try { bytes = Convert.FromBase64String(text); }
        catch (FormatException) { throw ApiException.BadRequest($"'{param}' is not valid base64", param); }
        if (bytes.Length % 4 != 0) throw ApiException.BadRequest($"'{param}' holds {bytes.Length} bytes, not a whole number of float32 values", param);
        float[] values = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("base64 vectors are little-endian float32");
        return values;
    }
}
