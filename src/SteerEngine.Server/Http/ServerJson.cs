using System.Text.Json;
using System.Text.Json.Serialization;

namespace SteerEngine.Server.Http;

/// <summary>The wire's JSON: snake_case names (OpenAI's), nulls written as OpenAI writes them.</summary>
public static class ServerJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>One JSON line (no indentation), as SSE data and JSONL files want it.</summary>
    public static string Line<T>(T value) => JsonSerializer.Serialize(value, Options);
}
