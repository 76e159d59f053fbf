using System.Text.Json;
using SteerEngine.Tokenization;

namespace SteerEngine.Server.Http;

/// <summary>POST /v1/chat/completions, validated.</summary>
public sealed record ChatCompletionRequest(IReadOnlyList<ChatMessage> Messages, GenerationParameters Parameters)
{
    /// <summary>The <c>monitor</c> extension field (Serving/MonitorSpec.cs), unparsed.</summary>
    public JsonElement? Monitor { get; init; }

    static readonly string[] Roles = ["system", "developer", "user", "assistant"];

    public static ChatCompletionRequest Read(JsonElement body, ServerLimits limits)
    {
        var f = RequestFields.Of(body, "the request body");
        JsonElement messages = f.Get("messages") ?? throw ApiException.BadRequest("'messages' is required", "messages");
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw ApiException.BadRequest("'messages' must be a non-empty list", "messages");
        var list = messages.EnumerateArray().Select((m, i) => ReadMessage(m, i)).ToList();
        f.Neutral("response_format", v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var t) && t.ValueEquals("text"));
        f.Neutral("tools", v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0);
        f.Neutral("tool_choice", v => v.ValueKind == JsonValueKind.String && v.ValueEquals("none"));
        f.Neutral("parallel_tool_calls", _ => true);
        var parameters = GenerationParameters.Read(f, chat: true, limits);
        JsonElement? monitor = f.Get("monitor");
        f.RejectUnread();
        return new ChatCompletionRequest(list, parameters) { Monitor = monitor };
    }

    static ChatMessage ReadMessage(JsonElement m, int i)
    {
        var f = RequestFields.Of(m, $"messages[{i}]", $"messages[{i}].");
        string role = f.RequiredString("role");
        if (!Roles.Contains(role)) throw ApiException.BadRequest($"'messages[{i}].role' is '{role}'; supported roles: {string.Join(", ", Roles)}", f.Name("role"));
        JsonElement content = f.Get("content") ?? throw ApiException.BadRequest($"'messages[{i}].content' is required", f.Name("content"));
        string text = content.ValueKind switch
        {
            JsonValueKind.String => content.GetString()!,
            JsonValueKind.Array => string.Concat(content.EnumerateArray().Select((part, j) => TextPart(part, $"messages[{i}].content[{j}]"))),
            _ => throw f.Wrong("content", content, "a string or a list of text parts"),
        };
        f.String("name");
        f.RejectUnread();
        return new ChatMessage(role == "developer" ? "system" : role, text);
    }

    static string TextPart(JsonElement part, string where)
    {
        var f = RequestFields.Of(part, where, where + ".");
        string type = f.RequiredString("type");
        if (type != "text") throw ApiException.BadRequest($"'{where}.type' is '{type}'; only text parts are supported", f.Name("type"));
        string text = f.RequiredString("text");
        f.RejectUnread();
        return text;
    }
}
