using System.Runtime.InteropServices;
using System.Text.Json;
using SteerEngine.Server.Http;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>
/// The request's <c>steering</c> field: <c>false</c> (the unsteered baseline, also dropping a model
/// alias's preset), one add, or a list of adds, each
/// <c>{"vector": NAME | [floats], "vector_base64": f32 little-endian, "layer": L, "multiplier": M,
/// "positions": "all|prompt|response|last_prompt|first_k|tokens", "k": first_k's count, "tokens": [positions],
/// "op": "add|add_normalized|ablate|cap|set", "lo"/"hi": cap's bounds, "value": set's projection,
/// "hook": "resid_post|resid_mid|attn_z" or a TransformerLens name (blocks.L.hook_resid_mid, which may stand
/// for "layer"), "head": attn_z's one head,
/// "condition": {"vector": NAME | [floats], "vector_base64", "layer": L, "threshold": T, "comparator": "greater|less"}}</c>;
/// a term with a condition applies only to a sequence whose prompt meets it (CAST, <see cref="SteeringCondition"/>).
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
        (SteeringHook hook, int layer, int? head) = SteeringHookFields.Parse(f, config);
        float multiplier = (float)(f.Number("multiplier", -1e6, 1e6) ?? 1.0);
        SteeringPositions positions = Choice(f, "positions", "all", SteeringPositionsExtensions.Names, SteeringPositionsExtensions.Parse);
        SteeringOp op = Choice(f, "op", "add", SteeringOpNames.All, SteeringOpNames.Parse);
        SteeringAdd term = WithPositionFields(f, WithOpFields(f, new SteeringAdd(layer, [], 0f, positions) { Op = op, Hook = hook, Head = head }));
        float[] values = Vector(f, layer, vectors, width => SteeringHookFields.CheckWidth(f, term, width, config));
        JsonElement? condition = f.Get("condition");
        f.RejectUnread();
        if (op.IsProjection() && values.All(x => x == 0))
            throw ApiException.BadRequest($"'{f.Name("vector")}' is zero, so op {op.Name()} has no direction", f.Name("vector"));
        return term with
        {
            Vector = values, Multiplier = multiplier,
            Condition = condition is { } c ? Condition(RequestFields.Of(c, "a steering condition", f.Name("condition.")), vectors, config) : null,
        };
    }

    /// <summary>A term's condition: its vector (read at a block's output), block, threshold and comparator.</summary>
    static SteeringCondition Condition(RequestFields f, VectorLibrary vectors, Model.ModelConfig config)
    {
        int layer = (int)(f.Integer("layer", 0, config.NumLayers - 1) ?? throw ApiException.BadRequest($"'{f.Name("layer")}' is required", f.Name("layer")));
        double threshold = f.Number("threshold", -1, 1) ?? throw ApiException.BadRequest($"'{f.Name("threshold")}' (a cosine similarity in [-1, 1]) is required", f.Name("threshold"));
        var comparator = Choice(f, "comparator", "greater", SteeringCondition.ComparatorNames, SteeringCondition.ParseComparator);
        float[] values = Vector(f, layer, vectors, width => SteeringHookFields.CheckWidth(f, new SteeringAdd(layer, [], 0f), width, config)); // read at the block output
        f.RejectUnread();
        if (values.All(x => x == 0))
            throw ApiException.BadRequest($"'{f.Name("vector")}' is zero, so the condition has no direction", f.Name("vector"));
        return new SteeringCondition(layer, values, (float)threshold, comparator) { Name = f.Get("vector") is { ValueKind: JsonValueKind.String } n ? n.GetString()! : "" };
    }

    /// <summary>The entry's "vector" (a name or numbers) or "vector_base64", for its block; its width checked by <paramref name="checkWidth"/>, its values finite.</summary>
    static float[] Vector(RequestFields f, int layer, VectorLibrary vectors, Action<int> checkWidth)
    {
        JsonElement? vector = f.Get("vector");
        string? base64 = f.String("vector_base64");
        if (vector is null == base64 is null)
            throw ApiException.BadRequest($"give exactly one of '{f.Name("vector")}' and '{f.Name("vector_base64")}'", f.Name("vector"));
        float[] values = base64 is not null ? FromBase64(base64, f.Name("vector_base64")) : vector!.Value.ValueKind switch
        {
            JsonValueKind.String => Named(vector.Value.GetString()!, layer, vectors, f.Name("vector")),
            JsonValueKind.Array => FromList(vector.Value, f.Name("vector")),
            _ => throw f.Wrong("vector", vector.Value, "a vector name or a list of numbers"),
        };
        checkWidth(values.Length);
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) throw ApiException.BadRequest($"'{f.Name("vector")}' element {i} is {values[i]}; vectors must be finite", f.Name("vector"));
        return values;
    }

    static T Choice<T>(RequestFields f, string field, string fallback, string[] names, Func<string, T> parse)
    {
        string text = f.String(field) ?? fallback;
        if (!names.Contains(text))
            throw ApiException.BadRequest($"'{f.Name(field)}' is '{text}'; it must be one of {string.Join(", ", names)}", f.Name(field));
        return parse(text);
    }

    /// <summary>cap's lo / hi and set's value; refused on the operations that do not use them.</summary>
    static SteeringAdd WithOpFields(RequestFields f, SteeringAdd term)
    {
        double? lo = f.Number("lo", -1e30, 1e30), hi = f.Number("hi", -1e30, 1e30), value = f.Number("value", -1e30, 1e30);
        string op = term.Op.Name();
        if (term.Op != SteeringOp.Cap && (lo ?? hi) is not null)
            throw ApiException.BadRequest($"'{f.Name(lo is null ? "hi" : "lo")}' applies to op cap only, not {op}", f.Name(lo is null ? "hi" : "lo"));
        if (term.Op != SteeringOp.Set && value is not null)
            throw ApiException.BadRequest($"'{f.Name("value")}' applies to op set only, not {op}", f.Name("value"));
        if (term.Op == SteeringOp.Cap && lo is null && hi is null)
            throw ApiException.BadRequest($"op cap needs '{f.Name("lo")}', '{f.Name("hi")}' or both", f.Name("lo"));
        if (lo > hi)
            throw ApiException.BadRequest($"'{f.Name("lo")}' is {lo}, above '{f.Name("hi")}' {hi}", f.Name("lo"));
        if (term.Op == SteeringOp.Set && value is null)
            throw ApiException.BadRequest($"op set needs '{f.Name("value")}'", f.Name("value"));
        return term with
        {
            Lo = lo is { } l ? (float)l : float.NegativeInfinity,
            Hi = hi is { } h ? (float)h : float.PositiveInfinity,
            Value = (float)(value ?? 0),
        };
    }

    /// <summary>first_k's k and tokens' positions; each refused with the other modes.</summary>
    static SteeringAdd WithPositionFields(RequestFields f, SteeringAdd term)
    {
        long? k = f.Integer("k", 1, int.MaxValue);
        JsonElement? tokens = f.Get("tokens");
        bool firstK = term.Positions == SteeringPositions.FirstK, listed = term.Positions == SteeringPositions.Tokens;
        if (firstK != k is not null)
            throw ApiException.BadRequest(firstK ? $"positions first_k needs '{f.Name("k")}'" : $"'{f.Name("k")}' applies to positions first_k only", f.Name("k"));
        if (listed != tokens is not null)
            throw ApiException.BadRequest(listed ? $"positions tokens needs '{f.Name("tokens")}'" : $"'{f.Name("tokens")}' applies to positions tokens only", f.Name("tokens"));
        return term with { FirstK = (int)(k ?? 0), TokenPositions = tokens is { } t ? TokenList(t, f.Name("tokens")) : null };
    }

    static int[] TokenList(JsonElement array, string param)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
            throw ApiException.BadRequest($"'{param}' must be a non-empty list of token positions", param);
        var positions = new List<int>();
        foreach (JsonElement x in array.EnumerateArray())
        {
            if (x.ValueKind != JsonValueKind.Number || !x.TryGetInt32(out int p) || p < 0)
                throw ApiException.BadRequest($"'{param}' element {positions.Count} is not a position ≥ 0", param);
            positions.Add(p);
        }
        return positions.Distinct().Order().ToArray();
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
