using System.Text.Json;

namespace SteerEngine.Tests.Tokenization;

/// <summary>
/// A throwaway model directory with a tiny byte-level BPE tokenizer.json: the letters of "hello
/// world", merges building "hello" and "world", and two added tokens (special "&lt;|end|&gt;",
/// non-special "&lt;extra&gt;").
/// </summary>
internal sealed class TemporaryModelDirectory : IDisposable
{
    public const int EndId = 100;
    public const int ExtraId = 101;

    public static readonly Dictionary<string, int> Vocab = new()
    {
        ["h"] = 0, ["e"] = 1, ["l"] = 2, ["o"] = 3, ["w"] = 4, ["r"] = 5, ["d"] = 6, ["Ġ"] = 7, ["!"] = 8,
        ["he"] = 9, ["ll"] = 10, ["hell"] = 11, ["hello"] = 12, ["wo"] = 13, ["rl"] = 14, ["rld"] = 15, ["world"] = 16, ["Ġworld"] = 17,
    };

    public static readonly string[][] Merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["w", "o"], ["r", "l"], ["rl", "d"], ["wo", "rld"], ["Ġ", "world"]];

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "steer-tokenizer-" + Guid.NewGuid().ToString("N"));

    public TemporaryModelDirectory(string? chatTemplate, bool mergesAsPairs = false)
    {
        Directory.CreateDirectory(Path);
        var tokenizer = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new[]
            {
                new Dictionary<string, object?> { ["id"] = EndId, ["content"] = "<|end|>", ["special"] = true },
                new Dictionary<string, object?> { ["id"] = ExtraId, ["content"] = "<extra>", ["special"] = false },
            },
            ["normalizer"] = null,
            ["pre_tokenizer"] = new Dictionary<string, object?>
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new object[]
                {
                    new Dictionary<string, object?>
                    {
                        ["type"] = "Split",
                        ["pattern"] = new Dictionary<string, object?> { ["Regex"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
                        ["behavior"] = "Isolated",
                        ["invert"] = false,
                    },
                    new Dictionary<string, object?> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = false },
                },
            },
            ["model"] = new Dictionary<string, object?>
            {
                ["type"] = "BPE",
                ["vocab"] = Vocab,
                ["merges"] = mergesAsPairs ? Merges : Merges.Select(m => m[0] + " " + m[1]).ToArray(),
            },
        };
        WriteJson("tokenizer.json", tokenizer);
        WriteJson("tokenizer_config.json", new Dictionary<string, object?>
        {
            ["bos_token"] = new Dictionary<string, object?> { ["content"] = "<s>", ["special"] = true },
            ["eos_token"] = "<|end|>",
            ["chat_template"] = chatTemplate,
        });
    }

    public void WriteJson(string file, object value) =>
        File.WriteAllText(System.IO.Path.Combine(Path, file), JsonSerializer.Serialize(value));

    public void WriteText(string file, string text) =>
        File.WriteAllText(System.IO.Path.Combine(Path, file), text);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
