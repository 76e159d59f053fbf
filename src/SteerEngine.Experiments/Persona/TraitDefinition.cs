using System.Text.Json;
using System.Text.Json.Nodes;

namespace SteerEngine.Experiments.Persona;

/// <summary>One instruction pair: a system prompt that elicits the trait and one that suppresses it.</summary>
public sealed record InstructionPair(string Pos, string Neg);

/// <summary>
/// A trait in the persona-vectors layout: 5 instruction pairs, questions that elicit the trait, and a
/// 0–100 evaluation prompt with {question} and {answer}. <c>trait_data_extract/NAME.json</c> holds the
/// first 20 questions (used to build the vector), <c>trait_data_eval/NAME.json</c> the last 20 (held out).
/// </summary>
public sealed record TraitDefinition(IReadOnlyList<InstructionPair> Instructions, IReadOnlyList<string> Questions, string EvalPrompt)
{
    public const int Pairs = 5, QuestionsPerSplit = 20;
    public const string ExtractFolder = "trait_data_extract", EvalFolder = "trait_data_eval";

    public static string ExtractPath(string root, string trait) => Path.Combine(root, ExtractFolder, trait + ".json");
    public static string EvalPath(string root, string trait) => Path.Combine(root, EvalFolder, trait + ".json");

    /// <summary>
    /// Reads a generator's reply (the JSON object, possibly inside a ```json fence or after some prose) and checks it
    /// against what we asked for: exactly <paramref name="pairs"/> non-empty pos/neg pairs, exactly
    /// <paramref name="questions"/> distinct questions, an eval prompt with both placeholders. Throws
    /// <see cref="InvalidDataException"/> naming the first field that is wrong.
    /// </summary>
    public static TraitDefinition Parse(string reply, int pairs = Pairs, int questions = 2 * QuestionsPerSplit)
    {
        int start = reply.IndexOf('{'), end = reply.LastIndexOf('}');
        if (start < 0 || end < start) throw new InvalidDataException("the reply holds no JSON object");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(reply[start..(end + 1)]) as JsonObject ?? throw new InvalidDataException("the reply's JSON is not an object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"the reply is not valid JSON ({e.Message})");
        }
        var instructions = Array(root, "instruction").Select((n, i) =>
        {
            string Field(string name) => n is JsonObject o && o[name] is JsonValue v && v.TryGetValue(out string? s) && !string.IsNullOrWhiteSpace(s) ? s.Trim()
                : throw new InvalidDataException($"instruction[{i}] has no non-empty string '{name}'");
            return new InstructionPair(Field("pos"), Field("neg"));
        }).ToList();
        if (instructions.Count != pairs) throw new InvalidDataException($"'instruction' has {instructions.Count} pairs, expected {pairs}");
        var qs = Array(root, "questions").Select((n, i) => n is JsonValue v && v.TryGetValue(out string? s) && !string.IsNullOrWhiteSpace(s) ? s.Trim()
            : throw new InvalidDataException($"questions[{i}] is not a non-empty string")).ToList();
        if (qs.Count != questions) throw new InvalidDataException($"'questions' has {qs.Count} entries, expected {questions}");
        if (qs.Distinct(StringComparer.Ordinal).Count() != qs.Count) throw new InvalidDataException("'questions' repeats a question");
        string eval = root["eval_prompt"] is JsonValue ev && ev.TryGetValue(out string? text) ? text : throw new InvalidDataException("no string field 'eval_prompt'");
        foreach (string placeholder in new[] { "{question}", "{answer}" })
            if (!eval.Contains(placeholder)) throw new InvalidDataException($"'eval_prompt' lacks the placeholder {placeholder}");
        return new TraitDefinition(instructions, qs, eval);
    }

    static JsonArray Array(JsonObject root, string name) =>
        root[name] as JsonArray ?? throw new InvalidDataException($"no array field '{name}'");

    /// <summary>Reads one split file (trait_data_extract/NAME.json or trait_data_eval/NAME.json).</summary>
    public static TraitDefinition Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: trait file not found");
        try
        {
            JsonObject root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException("not a JSON object");
            int pairs = (root["instruction"] as JsonArray)?.Count ?? 0, questions = (root["questions"] as JsonArray)?.Count ?? 0;
            if (pairs == 0 || questions == 0) throw new InvalidDataException("needs non-empty 'instruction' and 'questions' arrays");
            return Parse(File.ReadAllText(path), pairs, questions);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException)
        {
            throw new InvalidDataException($"{path}: {e.Message}");
        }
    }

    /// <summary>Writes both splits atomically under <paramref name="root"/>: the first half of the questions to extract, the rest to eval.</summary>
    public (string Extract, string Eval) WriteSplits(string root, string trait)
    {
        int half = Questions.Count / 2;
        string extract = ExtractPath(root, trait), eval = EvalPath(root, trait);
        Write(extract, this with { Questions = Questions.Take(half).ToList() });
        Write(eval, this with { Questions = Questions.Skip(half).ToList() });
        return (extract, eval);
    }

    public static void Write(string path, TraitDefinition t)
    {
        var root = new JsonObject
        {
            ["instruction"] = new JsonArray(t.Instructions.Select(p => (JsonNode)new JsonObject { ["pos"] = p.Pos, ["neg"] = p.Neg }).ToArray()),
            ["questions"] = new JsonArray(t.Questions.Select(q => (JsonNode)JsonValue.Create(q)).ToArray()),
            ["eval_prompt"] = t.EvalPrompt,
        };
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
