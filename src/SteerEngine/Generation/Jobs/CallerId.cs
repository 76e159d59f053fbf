using System.Text.Json;

namespace SteerEngine.Generation.Jobs;

/// <summary>
/// A caller's id carried through a job: kept as the JSON text it came in with and written back
/// unchanged, so 7 stays the number 7 and "7" the string "7" — a script that joins its input and
/// our output on the id (pandas, a dict) finds every match. Resume matches records by
/// <see cref="Key(string)"/>, under which 7 and "7" are different ids.
/// </summary>
public static class CallerId
{
    /// <summary>The JSON text of <paramref name="record"/>'s <paramref name="field"/>, or null when absent; a string or a number, else an error naming <paramref name="where"/>.</summary>
    public static string? Read(JsonElement record, string field, string where)
    {
        if (!record.TryGetProperty(field, out JsonElement id)) return null;
        return id.ValueKind is JsonValueKind.String or JsonValueKind.Number
            ? id.GetRawText()
            : throw new InvalidDataException($"{where}: '{field}' must be a string or a number, not {id.ValueKind.ToString().ToLowerInvariant()}");
    }

    /// <summary>The id as text (a string's value, a number's digits as written): what hashes and composite ids use.</summary>
    public static string Text(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.ValueKind == JsonValueKind.String ? doc.RootElement.GetString()! : json;
    }

    /// <summary>Writes <paramref name="json"/> (from <see cref="Read"/>) as property <paramref name="name"/>, type and digits unchanged.</summary>
    public static void Write(Utf8JsonWriter w, string name, string json)
    {
        w.WritePropertyName(name);
        w.WriteRawValue(json);
    }

    /// <summary>The resume key of a record's id element: a string's value, a number's digits as written, each marked with its type.</summary>
    public static string Key(JsonElement id) => id.ValueKind switch
    {
        JsonValueKind.String => Key(id.GetString()!),
        JsonValueKind.Number => "n:" + id.GetRawText(),
        _ => throw new InvalidOperationException("an id is a string or a number"),
    };

    /// <summary>The resume key of a string id.</summary>
    public static string Key(string id) => "s:" + id;

    /// <summary>The resume key of an id's JSON text (from <see cref="Read"/>).</summary>
    public static string KeyOfJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return Key(doc.RootElement);
    }
}
