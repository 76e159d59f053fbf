using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Generation.Jobs;

namespace SteerEngine.Judging.Data;

/// <summary>One answer to judge: its id, question and answer, and every other field of its input record (carried to the outputs).</summary>
public sealed record JudgeItem(long Index, string Id, string Question, string Answer, JsonObject Fields)
{
    /// <summary>A field's value as text (numbers in invariant form), or null when absent or null.</summary>
    public string? Field(string name) => Fields.TryGetPropertyValue(name, out JsonNode? n) && n is not null
        ? n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : n.ToJsonString()
        : null;
}

/// <summary>Which fields hold the answer, the question and the id; null means the first of the usual names that is present.</summary>
public sealed record InputFields(string? Answer = null, string? Question = null, string? Id = null)
{
    public static readonly string[] AnswerNames = ["response", "answer", "completion", "output"];
    public static readonly string[] QuestionNames = ["question", "prompt", "user_prompt"];
    public static readonly string[] IdNames = ["id", "generation_id"];
}

/// <summary>
/// Reads answers to judge from JSONL or CSV (by extension): ours (`steer generate`: id, question,
/// response), the BiPO study's generations (generation_id, prompt, response), the
/// emergent-misalignment CSVs (question_id, question, answer) and the persona-vectors CSVs
/// (question, prompt, answer, question_id). Records are read lazily, in file order; a record
/// without an id field gets "row{N}" (its 1-based record number). A missing answer or question,
/// or an id seen twice, is an error naming the file and line.
/// </summary>
public static class JudgeInput
{
    public static IEnumerable<JudgeItem> Read(string path, InputFields fields)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: input file not found");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        IEnumerable<(int Line, JsonObject Row)> rows = ext switch
        {
            ".jsonl" or ".json" => Jsonl(path),
            ".csv" => CsvReader.Read(path).Select(r => (r.Line, ToObject(r.Row))),
            _ => throw new ArgumentException($"{path}: input must be .jsonl or .csv, not '{ext}'"),
        };
        var seen = new HashSet<string>();
        long index = 0;
        foreach (var (line, row) in rows)
        {
            string answer = Pick(row, fields.Answer, InputFields.AnswerNames, path, line, "answer")
                            ?? throw new InvalidDataException($"{path}:{line}: no answer field (expected {fields.Answer ?? string.Join(", ", InputFields.AnswerNames)})");
            string question = Pick(row, fields.Question, InputFields.QuestionNames, path, line, "question")
                              ?? throw new InvalidDataException($"{path}:{line}: no question field (expected {fields.Question ?? string.Join(", ", InputFields.QuestionNames)})");
            string id = Pick(row, fields.Id, InputFields.IdNames, path, line, "id") ?? $"row{index + 1}";
            if (!seen.Add(id)) throw new InvalidDataException($"{path}:{line}: id '{id}' appears twice; ids must be unique (or leave the id field out)");
            yield return new JudgeItem(index++, id, question, answer, row);
        }
    }

    static string? Pick(JsonObject row, string? field, string[] names, string path, int line, string what)
    {
        if (field is not null)
        {
            if (!row.ContainsKey(field)) throw new InvalidDataException($"{path}:{line}: no field '{field}' for the {what}");
            return Text(row[field]);
        }
        foreach (string n in names)
            if (row.ContainsKey(n) && Text(row[n]) is string s) return s;
        return null;
    }

    static string? Text(JsonNode? n) => n is null ? null
        : n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>()
        : n.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False ? n.ToJsonString()
        : null;

    static IEnumerable<(int, JsonObject)> Jsonl(string path)
    {
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject? o;
            try
            {
                o = JsonNode.Parse(line) as JsonObject;
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not valid JSON ({e.Message})");
            }
            yield return (lineNo, o ?? throw new InvalidDataException($"{path}:{lineNo}: a record must be a JSON object"));
        }
    }

    /// <summary>A CSV row as an object; the numbers stay text (the layouts write them back as they came).</summary>
    static JsonObject ToObject(Dictionary<string, string> row)
    {
        var o = new JsonObject();
        foreach (var (k, v) in row) o[k] = v;
        return o;
    }

    public static string Format(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
