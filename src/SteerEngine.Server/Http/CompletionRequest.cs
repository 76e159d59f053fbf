using System.Text.Json;

namespace SteerEngine.Server.Http;

/// <summary>One prompt of a text completion: text (encoded with BOS) or token ids as given.</summary>
public sealed record CompletionPrompt(string? Text, int[]? Tokens);

/// <summary>POST /v1/completions, validated.</summary>
public sealed record CompletionRequest(IReadOnlyList<CompletionPrompt> Prompts, bool Echo, GenerationParameters Parameters)
{
    public static CompletionRequest Read(JsonElement body, ServerLimits limits)
    {
        var f = RequestFields.Of(body, "the request body");
        JsonElement prompt = f.Get("prompt") ?? throw ApiException.BadRequest("'prompt' is required", "prompt");
        var prompts = ReadPrompts(prompt);
        if (prompts.Count == 0) throw ApiException.BadRequest("'prompt' is an empty list", "prompt");
        if (prompts.Count > limits.MaxPromptsPerRequest) throw ApiException.BadRequest($"'prompt' has {prompts.Count} prompts; at most {limits.MaxPromptsPerRequest}", "prompt");
        bool echo = f.Bool("echo") ?? false;
        f.Neutral("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString() == "");
        var parameters = GenerationParameters.Read(f, chat: false, limits);
        f.Neutral("best_of", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int b) && b == parameters.N);
        f.RejectUnread();
        if (echo && parameters.Stream) throw ApiException.BadRequest("'echo' with 'stream' is not supported", "echo");
        return new CompletionRequest(prompts, echo, parameters with { MaxTokens = parameters.MaxTokens ?? 16 });
    }

    static List<CompletionPrompt> ReadPrompts(JsonElement p)
    {
        if (p.ValueKind == JsonValueKind.String) return [new CompletionPrompt(p.GetString(), null)];
        if (p.ValueKind != JsonValueKind.Array) throw ApiException.BadRequest($"'prompt' must be a string, a list of strings, a list of token ids or a list of such lists, not {RequestFields.Kind(p)}", "prompt");
        var items = p.EnumerateArray().ToList();
        if (items.Count > 0 && items.All(x => x.ValueKind == JsonValueKind.Number)) return [new CompletionPrompt(null, Tokens(p, "prompt"))];
        return items.Select((x, i) => x.ValueKind switch
        {
            JsonValueKind.String => new CompletionPrompt(x.GetString(), null),
            JsonValueKind.Array => new CompletionPrompt(null, Tokens(x, $"prompt[{i}]")),
            _ => throw ApiException.BadRequest($"'prompt[{i}]' is {RequestFields.Kind(x)}; expected a string or a list of token ids", "prompt"),
        }).ToList();
    }

    static int[] Tokens(JsonElement array, string where) =>
        array.EnumerateArray().Select((t, j) => t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out int id) && id >= 0
            ? id : throw ApiException.BadRequest($"'{where}[{j}]' is not a token id (a non-negative integer)", "prompt")).ToArray();
}
