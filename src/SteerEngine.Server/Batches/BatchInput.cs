using System.Text.Json;

namespace SteerEngine.Server.Batches;

/// <summary>One line of a Batch API input file: <c>{"custom_id", "method": "POST", "url", "body"}</c>.</summary>
public sealed record BatchLine(int LineNumber, string CustomId, string Url, JsonElement Body);

/// <summary>Reads and checks a Batch API input file; every problem names the file, the line and the field.</summary>
public static class BatchInput
{
    public static readonly string[] Endpoints = ["/v1/chat/completions", "/v1/completions"];

    /// <param name="endpoint">when given, every line's url must be it (the batch's endpoint)</param>
    public static IReadOnlyList<BatchLine> Read(string path, string source, string? endpoint = null)
    {
        var lines = new List<BatchLine>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int number = 0;
        foreach (string text in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            string where = $"{source} line {number}";
            JsonElement root;
            try { root = JsonDocument.Parse(text).RootElement; }
            catch (JsonException e) { throw new ArgumentException($"{where}: malformed JSON: {e.Message}"); }
            if (root.ValueKind != JsonValueKind.Object) throw new ArgumentException($"{where}: expected a JSON object");
            string custom = Field(root, "custom_id", where);
            if (!seen.Add(custom)) throw new ArgumentException($"{where}: custom_id '{custom}' appears twice; each must be unique");
            string method = Field(root, "method", where);
            if (method != "POST") throw new ArgumentException($"{where}: method '{method}'; only POST is supported");
            string url = Field(root, "url", where);
            if (!Endpoints.Contains(url)) throw new ArgumentException($"{where}: url '{url}'; supported: {string.Join(", ", Endpoints)}");
            if (endpoint is not null && url != endpoint) throw new ArgumentException($"{where}: url '{url}' differs from the batch's endpoint {endpoint}");
            if (!root.TryGetProperty("body", out JsonElement body) || body.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{where}: 'body' must be a JSON object");
            foreach (JsonProperty p in root.EnumerateObject())
                if (p.Name is not ("custom_id" or "method" or "url" or "body")) throw new ArgumentException($"{where}: unknown field '{p.Name}'");
            lines.Add(new BatchLine(number, custom, url, body.Clone()));
        }
        if (lines.Count == 0) throw new ArgumentException($"{source}: the batch input file has no requests");
        return lines;
    }

    static string Field(JsonElement root, string name, string where) =>
        root.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
            ? s : throw new ArgumentException($"{where}: '{name}' must be a non-empty string");
}
