using System.Text;
using System.Text.Json;

namespace SteerEngine.Experiments.Stages;

/// <summary>The JSONL files stages hand each other: complete records read back, a finished item's records written in a fixed order.</summary>
public static class JsonlRecords
{
    /// <summary>The complete records of a JSONL file (a torn last line is not one); none when it does not exist.</summary>
    public static List<JsonElement> Read(string path) =>
        File.Exists(path) ? Report.BipoStudyReader.Records(path).Select(r => r.Record).ToList() : [];

    public static HashSet<string> Ids(string path) =>
        Read(path).Select(r => r.TryGetProperty("id", out var id) ? id.GetString() ?? "" : "").ToHashSet();

    /// <summary>
    /// Turns a finished item's work file into its output: the records in the order <paramref name="key"/> gives,
    /// written beside the output and renamed into place, then the work file removed. Whichever way a run was
    /// interrupted and resumed, the output is the same bytes.
    /// </summary>
    public static void Finish<TKey>(string partial, string output, Func<JsonElement, TKey> key)
    {
        var lines = File.ReadAllLines(partial).Where(l => l.Length > 0)
            .Select(l => (Line: l, Key: key(JsonDocument.Parse(l).RootElement))).OrderBy(x => x.Key).Select(x => x.Line);
        var sb = new StringBuilder();
        foreach (string line in lines) sb.Append(line).Append('\n');
        AtomicFile.WriteAllText(output, sb.ToString());
        File.Delete(partial);
    }
}
