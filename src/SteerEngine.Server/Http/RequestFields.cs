using System.Text.Json;

namespace SteerEngine.Server.Http;

/// <summary>
/// Typed, checked reads of a JSON object's fields: a wrong type or value is a 400 naming the field
/// (<paramref name="prefix"/> + name, as OpenAI's <c>param</c>). Fields never read are reported by
/// <see cref="RejectUnread"/>, so a parameter the engine does not support is refused, never ignored.
/// </summary>
public sealed class RequestFields(JsonElement obj, string prefix = "")
{
    readonly HashSet<string> _read = [];

    public static RequestFields Of(JsonElement element, string what, string prefix = "")
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest($"{what} must be a JSON object, not {Kind(element)}", prefix.TrimEnd('.') is { Length: > 0 } p ? p : null);
        return new RequestFields(element, prefix);
    }

    public string Name(string field) => prefix + field;

    /// <summary>The field's value, or null when absent or JSON null.</summary>
    public JsonElement? Get(string field)
    {
        _read.Add(field);
        return obj.TryGetProperty(field, out JsonElement v) && v.ValueKind != JsonValueKind.Null ? v : null;
    }

    public bool Has(string field) => obj.TryGetProperty(field, out JsonElement v) && v.ValueKind != JsonValueKind.Null;

    public string? String(string field) => Get(field) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(field, v, "a string")
        : null;

    public string RequiredString(string field) => String(field) ?? throw ApiException.BadRequest($"'{Name(field)}' is required", Name(field));

    public bool? Bool(string field) => Get(field) is { } v
        ? v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw Wrong(field, v, "true or false")
        : null;

    public long? Integer(string field, long min = long.MinValue, long max = long.MaxValue)
    {
        if (Get(field) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n)) throw Wrong(field, v, "an integer");
        if (n < min || n > max) throw ApiException.BadRequest($"'{Name(field)}' is {n}; it must be in {min}..{max}", Name(field));
        return n;
    }

    public double? Number(string field, double min, double max)
    {
        if (Get(field) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double x)) throw Wrong(field, v, "a number");
        if (!(x >= min && x <= max)) throw ApiException.BadRequest($"'{Name(field)}' is {x}; it must be in [{min}, {max}]", Name(field));
        return x;
    }

    /// <summary>Reads a field the engine does not implement: allowed only at its neutral value.</summary>
    public void Neutral(string field, Func<JsonElement, bool> isNeutral)
    {
        if (Get(field) is { } v && !isNeutral(v))
            throw ApiException.BadRequest($"'{Name(field)}' is not supported by this server (only its default is accepted)", Name(field), "unsupported_parameter");
    }

    /// <summary>Throws for the first field present that no reader asked for.</summary>
    public void RejectUnread()
    {
        foreach (JsonProperty p in obj.EnumerateObject())
            if (!_read.Contains(p.Name))
                throw ApiException.BadRequest($"unrecognized or unsupported request argument '{Name(p.Name)}'", Name(p.Name), "unsupported_parameter");
    }

    public ApiException Wrong(string field, JsonElement v, string expected) =>
        ApiException.BadRequest($"'{Name(field)}' must be {expected}, not {Kind(v)}", Name(field));

    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
