using System.Text.Json;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Tokenization;

namespace SteerEngine.Training;

/// <summary>One preference example as token ids: the chat-formatted prompt and the two responses (each ending in EOS).</summary>
public sealed record PreferencePair(int[] Prompt, int[] Chosen, int[] Rejected)
{
    public ScoredSequence ChosenSequence => new([.. Prompt, .. Chosen], Prompt.Length);
    public ScoredSequence RejectedSequence => new([.. Prompt, .. Rejected], Prompt.Length);
}

/// <summary>
/// Preference data for BiPO, chosen by extension:
/// <list type="bullet">
/// <item><c>.csv</c>: the BiPO layout, columns <c>question,matching,not_matching</c>; responses are
/// " " + answer + EOS, as the reference builds them.</item>
/// <item><c>.jsonl</c>: DPO records, <c>prompt</c>/<c>chosen</c>/<c>rejected</c> strings (responses are the text + EOS),
/// or chat form: the prompt as <c>prompt</c> or <c>messages</c> (a list of {role, content}) and chosen/rejected as strings
/// or as message lists whose last assistant turn is the response.</item>
/// </list>
/// Prompts go through the model's chat template (ending with the assistant header), with the optional
/// system prompt when the record has none. Bad input throws <see cref="InvalidDataException"/> naming file and line.
/// </summary>
public static class PreferenceData
{
    public static IReadOnlyList<PreferencePair> Load(string path, LanguageModel lm, string? system = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: data file not found", path);
        int eos = EosId(lm);
        var pairs = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".csv" => LoadCsv(path, lm, system, eos),
            ".jsonl" or ".json" => LoadJsonl(path, lm, system, eos),
            var ext => throw new ArgumentException($"{path}: unknown data format '{ext}' (expected .csv with question,matching,not_matching or .jsonl DPO records)"),
        };
        if (pairs.Count == 0) throw new InvalidDataException($"{path}: no preference pairs");
        return pairs;
    }

    /// <summary>
    /// One pair from text, as a <c>.jsonl</c> record {prompt, chosen, rejected} gives it: the user turn through the
    /// chat template (with the optional system prompt), each response + EOS.
    /// </summary>
    public static PreferencePair FromText(LanguageModel lm, string prompt, string chosen, string rejected, string? system = null)
    {
        int eos = EosId(lm);
        return new PreferencePair(Prompt(lm, [new ChatMessage("user", prompt)], system), Response(lm, chosen, eos), Response(lm, rejected, eos));
    }

    static int EosId(LanguageModel lm) =>
        lm.Tokenizer.EosToken is string eos && lm.Tokenizer.TokenToId(eos) is int id
            ? id
            : throw new ModelFormatException($"{lm.Directory}: the tokenizer has no eos_token; BiPO responses end with it");

    static List<PreferencePair> LoadCsv(string path, LanguageModel lm, string? system, int eos)
    {
        var pairs = new List<PreferencePair>();
        bool checkedHeader = false;
        foreach (var (line, row) in CsvReader.Read(path))
        {
            if (!checkedHeader)
            {
                foreach (string column in new[] { "question", "matching", "not_matching" })
                    if (!row.ContainsKey(column))
                        throw new InvalidDataException($"{path}:1: missing column '{column}' (expected question,matching,not_matching)");
                checkedHeader = true;
            }
            int[] prompt = Prompt(lm, [new ChatMessage("user", row["question"])], system);
            pairs.Add(new PreferencePair(prompt, Response(lm, " " + row["matching"], eos), Response(lm, " " + row["not_matching"], eos)));
        }
        return pairs;
    }

    static List<PreferencePair> LoadJsonl(string path, LanguageModel lm, string? system, int eos)
    {
        var pairs = new List<PreferencePair>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{lineNo}";
            JsonElement o;
            try { o = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new InvalidDataException($"{where}: not valid JSON ({e.Message})"); }
            if (o.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected a JSON object");

            List<ChatMessage> conversation;
            if (o.TryGetProperty("prompt", out JsonElement p) && p.ValueKind == JsonValueKind.String)
                conversation = [new ChatMessage("user", p.GetString()!)];
            else if (o.TryGetProperty("prompt", out p) && p.ValueKind == JsonValueKind.Array)
                conversation = Messages(p, where, "prompt");
            else if (o.TryGetProperty("messages", out JsonElement m) && m.ValueKind == JsonValueKind.Array)
                conversation = Messages(m, where, "messages");
            else
                throw new InvalidDataException($"{where}: needs a prompt (a string or a list of messages) or messages, and chosen and rejected");
            if (conversation.Count == 0) throw new InvalidDataException($"{where}: the prompt has no messages");
            string chosen = ResponseText(o, "chosen", where), rejected = ResponseText(o, "rejected", where);
            pairs.Add(new PreferencePair(Prompt(lm, conversation, system), Response(lm, chosen, eos), Response(lm, rejected, eos)));
        }
        return pairs;
    }

    static List<ChatMessage> Messages(JsonElement array, string where, string field)
    {
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (JsonElement m in array.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object
                || !m.TryGetProperty("role", out JsonElement role) || role.ValueKind != JsonValueKind.String
                || !m.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{where}: {field}[{i}] must be an object with string fields role and content");
            list.Add(new ChatMessage(role.GetString()!, content.GetString()!));
            i++;
        }
        return list;
    }

    static string ResponseText(JsonElement o, string field, string where)
    {
        if (!o.TryGetProperty(field, out JsonElement value))
            throw new InvalidDataException($"{where}: missing field '{field}'");
        if (value.ValueKind == JsonValueKind.String) return value.GetString()!;
        if (value.ValueKind == JsonValueKind.Array)
        {
            var messages = Messages(value, where, field);
            if (messages.LastOrDefault(m => m.Role == "assistant") is { } answer) return answer.Content;
            throw new InvalidDataException($"{where}: {field} has no assistant message");
        }
        throw new InvalidDataException($"{where}: {field} must be a string or a list of messages");
    }

    static int[] Prompt(LanguageModel lm, List<ChatMessage> conversation, string? system)
    {
        if (system is not null && conversation[0].Role != "system") conversation.Insert(0, new ChatMessage("system", system));
        string text = lm.Template.Render(conversation, addGenerationPrompt: true,
            new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
        return lm.Tokenizer.Encode(text, addBos: false);
    }

    static int[] Response(LanguageModel lm, string text, int eos) => [.. lm.Tokenizer.Encode(text, addBos: false), eos];
}
