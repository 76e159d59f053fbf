using System.Text.Json;

namespace SteerEngine.Tokenization;

/// <summary>An entry of tokenizer.json's <c>added_tokens</c>: matched verbatim in input text, before any splitting.</summary>
internal readonly record struct AddedToken(int Id, string Content, bool Special);

/// <summary>
/// What a Hugging Face model directory's tokenizer.json and tokenizer_config.json say, read once
/// at load into plain data. Only byte-level BPE (Llama 3, Qwen2/3, GPT-2 style) is accepted.
/// </summary>
internal sealed class TokenizerDefinition
{
    /// <summary>GPT-2's split pattern, used when tokenizer.json has a lone ByteLevel pre-tokenizer with use_regex.</summary>
    const string Gpt2SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public required Dictionary<string, int> Vocab { get; init; }
    /// <summary>Merge rules as "left right", in rank order.</summary>
    public required List<string> Merges { get; init; }
    public required string SplitPattern { get; init; }
    /// <summary>tokenizer.json's <c>ignore_merges</c>: a pre-token found whole in the vocabulary is one token (as tiktoken does).</summary>
    public required bool IgnoreMerges { get; init; }
    public required bool NormalizeNfc { get; init; }
    public required List<AddedToken> AddedTokens { get; init; }
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }
    public string? ChatTemplate { get; init; }
    /// <summary>generation_config.json's <c>eos_token_id</c> (one id or a list): the ids Hugging Face generation stops at.</summary>
    public int[] GenerationEosIds { get; init; } = [];

    public static TokenizerDefinition Read(string modelDir)
    {
        string tokenizerPath = Path.Combine(modelDir, "tokenizer.json");
        using JsonDocument tokenizer = ParseFile(tokenizerPath);
        JsonElement root = tokenizer.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw Bad(tokenizerPath, "the top level is not a JSON object");

        JsonElement model = Require(root, "model", JsonValueKind.Object, tokenizerPath);
        string modelType = model.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
        if (modelType != "BPE")
            throw Bad(tokenizerPath, $"model.type is \"{modelType}\", expected \"BPE\"");

        var config = ReadConfig(Path.Combine(modelDir, "tokenizer_config.json"));
        return new TokenizerDefinition
        {
            Vocab = ReadVocab(Require(model, "vocab", JsonValueKind.Object, tokenizerPath), tokenizerPath),
            Merges = ReadMerges(Require(model, "merges", JsonValueKind.Array, tokenizerPath), tokenizerPath),
            IgnoreMerges = model.TryGetProperty("ignore_merges", out JsonElement im) && im.ValueKind == JsonValueKind.True,
            SplitPattern = ReadSplitPattern(root, tokenizerPath),
            NormalizeNfc = ReadNormalizer(root, tokenizerPath),
            AddedTokens = ReadAddedTokens(root, tokenizerPath),
            BosToken = config.Bos,
            EosToken = config.Eos,
            ChatTemplate = config.Template,
            GenerationEosIds = ReadGenerationEos(Path.Combine(modelDir, "generation_config.json")),
        };
    }

    static int[] ReadGenerationEos(string path)
    {
        if (!File.Exists(path))
            return [];
        using JsonDocument config = ParseFile(path);
        JsonElement root = config.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw Bad(path, "the top level is not a JSON object");
        if (!root.TryGetProperty("eos_token_id", out JsonElement eos) || eos.ValueKind == JsonValueKind.Null)
            return [];
        JsonElement[] values = eos.ValueKind == JsonValueKind.Array ? [.. eos.EnumerateArray()] : [eos];
        return values.Select(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int id) && id >= 0
            ? id : throw Bad(path, $"eos_token_id {eos.GetRawText()} is not a token id or a list of them")).ToArray();
    }

    static JsonDocument ParseFile(string path)
    {
        if (!File.Exists(path))
            throw Bad(path, "file not found");
        try
        {
            using FileStream stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException($"{path}: not valid JSON ({FirstLine(e.Message)})", e);
        }
    }

    static Dictionary<string, int> ReadVocab(JsonElement vocab, string path)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw Bad(path, $"model.vocab[\"{entry.Name}\"] is not a non-negative integer id");
            result[entry.Name] = id;
        }
        if (result.Count == 0)
            throw Bad(path, "model.vocab is empty");
        return result;
    }

    // Older files store a merge as "left right"; newer ones as ["left", "right"].
    static List<string> ReadMerges(JsonElement merges, string path)
    {
        var result = new List<string>(merges.GetArrayLength());
        int index = 0;
        foreach (JsonElement merge in merges.EnumerateArray())
        {
            if (merge.ValueKind == JsonValueKind.String)
                result.Add(merge.GetString()!);
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                     && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                result.Add(merge[0].GetString() + " " + merge[1].GetString());
            else
                throw Bad(path, $"model.merges[{index}] is neither \"a b\" nor [\"a\", \"b\"]");
            index++;
        }
        return result;
    }

    static string ReadSplitPattern(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out JsonElement pre) || pre.ValueKind != JsonValueKind.Object)
            throw Bad(path, "pre_tokenizer is missing; expected a Split or ByteLevel pre-tokenizer");

        string type = TypeOf(pre);
        if (type == "Split")
            return SplitRegex(pre, path);
        if (type == "ByteLevel")
        {
            if (pre.TryGetProperty("add_prefix_space", out JsonElement aps) && aps.ValueKind == JsonValueKind.True)
                throw Bad(path, "pre_tokenizer ByteLevel with add_prefix_space=true is not supported");
            return Gpt2SplitPattern;
        }
        if (type == "Sequence" && pre.TryGetProperty("pretokenizers", out JsonElement steps) && steps.ValueKind == JsonValueKind.Array)
        {
            string? pattern = null;
            foreach (JsonElement step in steps.EnumerateArray())
            {
                string stepType = TypeOf(step);
                if (stepType == "Split" && pattern is null)
                    pattern = SplitRegex(step, path);
                else if (stepType == "ByteLevel" && step.TryGetProperty("use_regex", out JsonElement ur) && ur.ValueKind == JsonValueKind.False)
                    continue;
                else
                    throw Bad(path, $"pre_tokenizer step \"{stepType}\" is not supported (expected one Split followed by ByteLevel with use_regex=false)");
            }
            if (pattern is not null)
                return pattern;
        }
        throw Bad(path, $"pre_tokenizer \"{type}\" is not supported (expected Split, ByteLevel, or a Sequence of Split and ByteLevel)");
    }

    static string SplitRegex(JsonElement split, string path)
    {
        if (split.TryGetProperty("invert", out JsonElement inv) && inv.ValueKind == JsonValueKind.True)
            throw Bad(path, "pre_tokenizer Split with invert=true is not supported");
        if (split.TryGetProperty("behavior", out JsonElement behavior)
            && (behavior.ValueKind != JsonValueKind.String || behavior.GetString() != "Isolated"))
            throw Bad(path, $"pre_tokenizer Split behavior {behavior.GetRawText()} is not supported (expected \"Isolated\")");
        if (split.TryGetProperty("pattern", out JsonElement pattern) && pattern.ValueKind == JsonValueKind.Object
            && pattern.TryGetProperty("Regex", out JsonElement regex) && regex.ValueKind == JsonValueKind.String)
            return regex.GetString()!;
        throw Bad(path, "pre_tokenizer Split has no pattern.Regex string");
    }

    static bool ReadNormalizer(JsonElement root, string path)
    {
        if (!root.TryGetProperty("normalizer", out JsonElement normalizer) || normalizer.ValueKind == JsonValueKind.Null)
            return false;
        string type = TypeOf(normalizer);
        return type == "NFC" ? true : throw Bad(path, $"normalizer \"{type}\" is not supported (expected none or NFC)");
    }

    static List<AddedToken> ReadAddedTokens(JsonElement root, string path)
    {
        var result = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out JsonElement added) || added.ValueKind == JsonValueKind.Null)
            return result;
        if (added.ValueKind != JsonValueKind.Array)
            throw Bad(path, "added_tokens is not an array");
        int index = 0;
        foreach (JsonElement token in added.EnumerateArray())
        {
            if (token.ValueKind != JsonValueKind.Object
                || !token.TryGetProperty("id", out JsonElement id) || !id.TryGetInt32(out int idValue) || idValue < 0
                || !token.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String
                || content.GetString()!.Length == 0)
                throw Bad(path, $"added_tokens[{index}] needs a non-negative integer \"id\" and a non-empty string \"content\"");
            bool special = token.TryGetProperty("special", out JsonElement s) && s.ValueKind == JsonValueKind.True;
            result.Add(new AddedToken(idValue, content.GetString()!, special));
            index++;
        }
        return result;
    }

    static (string? Bos, string? Eos, string? Template) ReadConfig(string path)
    {
        if (!File.Exists(path))
            return (null, null, null);
        using JsonDocument config = ParseFile(path);
        JsonElement root = config.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw Bad(path, "the top level is not a JSON object");
        return (TokenString(root, "bos_token", path), TokenString(root, "eos_token", path), ReadChatTemplate(root, path));
    }

    // A special token in tokenizer_config.json is either its text or a serialized AddedToken object.
    static string? TokenString(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return value.GetString();
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String)
            return content.GetString();
        throw Bad(path, $"{name} is neither a string nor an object with \"content\"");
    }

    // chat_template is a string, or a list of {name, template} of which "default" is the chat one.
    static string? ReadChatTemplate(JsonElement root, string path)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return value.GetString();
        if (value.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement named in value.EnumerateArray())
            {
                if (named.ValueKind == JsonValueKind.Object
                    && named.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default"
                    && named.TryGetProperty("template", out JsonElement tpl) && tpl.ValueKind == JsonValueKind.String)
                    return tpl.GetString();
            }
            return null;
        }
        throw Bad(path, "chat_template is neither a string nor a list of {name, template}");
    }

    static JsonElement Require(JsonElement parent, string name, JsonValueKind kind, string path)
    {
        if (!parent.TryGetProperty(name, out JsonElement value))
            throw Bad(path, $"\"{name}\" is missing");
        if (value.ValueKind != kind)
            throw Bad(path, $"\"{name}\" is {value.ValueKind}, expected {kind}");
        return value;
    }

    static string TypeOf(JsonElement element) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()! : "(no type)";

    static TokenizerFormatException Bad(string path, string problem) => new($"{path}: {problem}");

    static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
