using System.Text.Json;

namespace SteerEngine.Generation.Jobs;

/// <summary>
/// One prompt of a job: its id (from the file, or its row number) and its text. <c>IdJson</c> is the
/// id's JSON text when a JSONL file gave it (records write it back with its type unchanged);
/// <c>Id</c> is its text, which composite record ids and seeds use.
/// </summary>
public sealed record JobPrompt(string Id, string Text, string? System = null, string? IdJson = null);

/// <summary>
/// Reads prompts from JSONL (one object per line) or CSV (with a header), by extension. The text
/// comes from <c>promptField</c>; the id from <c>idField</c> when present, else the row number.
/// A broken line is an error naming the file and line: a job never silently drops prompts.
/// </summary>
public static class PromptSource
{
    public static List<JobPrompt> Read(string path, string promptField = "question", string idField = "id", string? systemField = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: prompts file not found");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        var prompts = ext switch
        {
            ".jsonl" or ".json" => ReadJsonl(path, promptField, idField, systemField),
            ".csv" => ReadCsv(path, promptField, idField, systemField),
            _ => throw new ArgumentException($"{path}: prompts must be .jsonl or .csv, not '{ext}'"),
        };
        if (prompts.Count == 0) throw new InvalidDataException($"{path}: no prompts");
        var duplicate = prompts.GroupBy(p => p.Id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new InvalidDataException($"{path}: prompt id '{duplicate.Key}' appears {duplicate.Count()} times; ids must be unique");
        return prompts;
    }

    static List<JobPrompt> ReadJsonl(string path, string promptField, string idField, string? systemField)
    {
        var list = new List<JobPrompt>();
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement o;
            try
            {
                o = JsonDocument.Parse(line).RootElement;
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not valid JSON ({e.Message})");
            }
            if (o.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}:{lineNo}: expected a JSON object");
            if (!o.TryGetProperty(promptField, out var text) || text.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"{path}:{lineNo}: no string field '{promptField}' (set --prompt-field)");
            string? idJson = CallerId.Read(o, idField, $"{path}:{lineNo}");
            string id = idJson is null ? list.Count.ToString() : CallerId.Text(idJson);
            string? system = systemField is not null && o.TryGetProperty(systemField, out var sv) && sv.ValueKind == JsonValueKind.String ? sv.GetString() : null;
            list.Add(new JobPrompt(id, text.GetString()!, system, idJson));
        }
        return list;
    }

    static List<JobPrompt> ReadCsv(string path, string promptField, string idField, string? systemField)
    {
        var list = new List<JobPrompt>();
        foreach (var (line, row) in CsvReader.Read(path))
        {
            if (!row.TryGetValue(promptField, out string? text))
                throw new InvalidDataException($"{path}:{line}: no column '{promptField}' (set --prompt-field); columns: {string.Join(", ", row.Keys)}");
            string id = row.TryGetValue(idField, out string? idv) && idv.Length > 0 ? idv : list.Count.ToString();
            string? system = systemField is not null && row.TryGetValue(systemField, out string? sv) ? sv : null;
            list.Add(new JobPrompt(id, text, system));
        }
        return list;
    }
}
