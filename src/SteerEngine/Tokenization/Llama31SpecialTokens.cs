using System.Text.Json.Nodes;

namespace SteerEngine.Tokenization;

/// <summary>
/// Llama 3.1's names for its 256 special tokens (ids 128000–128255). Llama 3.0 used the same ids but named
/// 128004, 128005, 128008 and 128010 onwards reserved tokens; 3.1 gave four of them roles (a fine-tuning pad,
/// end of message after a tool call, the built-in tool marker) and renumbered the reserved ones that follow.
/// </summary>
public static class Llama31SpecialTokens
{
    public const int FirstId = 128000, Count = 256;

    static readonly string[] Named =
    [
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    ];

    /// <summary>The 3.1 name of special token <paramref name="id"/>; from 128011 on, reserved token id − 128008.</summary>
    public static string Name(int id)
    {
        if ((uint)(id - FirstId) >= Count) throw new ArgumentOutOfRangeException(nameof(id), $"{id} is not a Llama 3 special token id ({FirstId}..{FirstId + Count - 1})");
        int i = id - FirstId;
        return i < Named.Length ? Named[i] : $"<|reserved_special_token_{i - 8}|>";
    }

    /// <summary>Renames the special tokens of a Llama 3 tokenizer.json and tokenizer_config.json (parsed) to 3.1's names.</summary>
    public static void Apply(JsonObject tokenizer, JsonObject tokenizerConfig)
    {
        foreach (JsonNode? token in tokenizer["added_tokens"]?.AsArray() ?? [])
            if (token!["id"]!.GetValue<int>() is var id && (uint)(id - FirstId) < Count)
                token["content"] = Name(id);
        if (tokenizerConfig["added_tokens_decoder"] is JsonObject decoder)
            foreach (var (id, token) in decoder)
                if (int.TryParse(id, out int n) && (uint)(n - FirstId) < Count)
                    token!["content"] = Name(n);
    }
}
