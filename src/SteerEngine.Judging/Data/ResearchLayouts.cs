using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Generation.Jobs;

namespace SteerEngine.Judging.Data;

/// <summary>
/// Writes judged records in the layouts of the research projects whose analysis code should run on
/// our outputs, each file written whole and then moved into place:
/// <list type="bullet">
/// <item><c>bipo</c>: <c>DIR/{model}/layer{L}/{task}_scores_ep{N}.jsonl</c> per (model, layer, epoch) and
/// rubric, as the relationship-seeking BiPO study keeps its judge scores (generation_id,
/// test_prompt_id, multiplier, score, token_usage, cost), plus the raw judge reply.</item>
/// <item><c>em</c>: one CSV row per answer with the input's columns and <c>aligned_score</c>,
/// <c>coherent_score</c> (any rubric: <c>{column}_score</c>), CODE and REFUSAL kept as text, and
/// <c>{column}_reply</c> with the raw reply.</item>
/// <item><c>persona</c>: the persona-vectors CSV — question, prompt, answer, question_id, then one
/// column per rubric named after it (the trait, <c>coherence</c>), empty where no score was given —
/// which <c>steer extract --mode persona</c> reads directly.</item>
/// </list>
/// </summary>
public static class ResearchLayouts
{
    public static readonly string[] Names = ["bipo", "em", "persona"];

    sealed class Row
    {
        public long Item;
        public required string Question, Answer, ItemId;
        public required JsonObject Fields;
        public readonly Dictionary<string, (string? Score, string? Reply, string Status)> ByColumn = [];
    }

    /// <summary>Writes <paramref name="layout"/> from the judged JSONL at <paramref name="judged"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(string layout, string judged, string target)
    {
        return layout switch
        {
            "bipo" => WriteBipo(judged, target),
            "em" => [WriteCsv(judged, target, em: true)],
            "persona" => [WriteCsv(judged, target, em: false)],
            _ => throw new ArgumentException($"--layout '{layout}': expected {string.Join(", ", Names)}"),
        };
    }

    static IReadOnlyList<string> WriteBipo(string judged, string dir)
    {
        var files = new Dictionary<string, List<string>>();
        foreach (JsonElement r in JudgeRecord.Read(judged))
        {
            JsonElement f = r.GetProperty("fields");
            string model = Str(f, "model") ?? "model";
            string layer = Str(f, "layer") ?? Str(f, "steering_layer") ?? "unsteered";
            string epoch = Str(f, "epoch") ?? "0";
            string task = r.GetProperty("column").GetString()!;
            string path = Path.Combine(dir, model, layer == "unsteered" ? layer : $"layer{layer}", $"{task}_scores_ep{epoch}.jsonl");
            if (!files.TryGetValue(path, out var lines)) files[path] = lines = [];
            lines.Add(JsonlOutput.ToLine(w =>
            {
                string gen = Str(f, "generation_id") ?? r.GetProperty("item_id").GetString()!;
                if (long.TryParse(gen, NumberStyles.Integer, CultureInfo.InvariantCulture, out long g)) w.WriteNumber("generation_id", g);
                else w.WriteString("generation_id", gen);
                string? prompt = Str(f, "test_prompt_id") ?? Str(f, "prompt_id");
                if (prompt is null) w.WriteNull("test_prompt_id");
                else if (long.TryParse(prompt, NumberStyles.Integer, CultureInfo.InvariantCulture, out long p)) w.WriteNumber("test_prompt_id", p);
                else w.WriteString("test_prompt_id", prompt);
                if (f.TryGetProperty("multiplier", out var m) && m.ValueKind == JsonValueKind.Number) w.WriteNumber("multiplier", m.GetDouble());
                else w.WriteNull("multiplier");
                JsonElement score = r.GetProperty("score");
                if (score.ValueKind == JsonValueKind.Number) w.WriteNumber("score", score.GetDouble()); else w.WriteNull("score");
                long pin = r.GetProperty("prompt_tokens").GetInt64(), pout = r.GetProperty("completion_tokens").GetInt64();
                w.WriteStartObject("token_usage");
                w.WriteNumber("prompt_tokens", pin);
                w.WriteNumber("completion_tokens", pout);
                w.WriteNumber("total_tokens", pin + pout);
                w.WriteEndObject();
                w.WriteStartObject("cost");
                JsonElement cost = r.GetProperty("cost");
                if (cost.ValueKind == JsonValueKind.Number) w.WriteNumber("total_cost", cost.GetDouble()); else w.WriteNull("total_cost");
                w.WriteEndObject();
                w.WriteString("status", r.GetProperty("status").GetString());
                w.WritePropertyName("judge_replies");
                r.GetProperty("replies").WriteTo(w);
            }));
        }
        foreach (var (path, lines) in files) WriteAtomically(path, string.Concat(lines.Select(l => l + "\n")));
        return files.Keys.Order().ToList();
    }

    static string WriteCsv(string judged, string path, bool em)
    {
        var rows = new SortedDictionary<long, Row>();
        var columns = new List<string>();
        foreach (JsonElement r in JudgeRecord.Read(judged))
        {
            long item = r.GetProperty("item").GetInt64();
            if (!rows.TryGetValue(item, out Row? row))
                rows[item] = row = new Row
                {
                    Item = item, ItemId = r.GetProperty("item_id").GetString()!, Question = r.GetProperty("question").GetString()!,
                    Answer = r.GetProperty("answer").GetString()!, Fields = JsonNode.Parse(r.GetProperty("fields").GetRawText())!.AsObject(),
                };
            string column = r.GetProperty("column").GetString()!;
            if (!columns.Contains(column)) columns.Add(column);
            JsonElement score = r.GetProperty("score");
            string? text = r.TryGetProperty("text_answer", out var t) ? t.GetString() : null;
            string? value = score.ValueKind == JsonValueKind.Number ? Number(score.GetDouble()) : em ? text : null;
            string? reply = string.Join(" | ", r.GetProperty("replies").EnumerateArray().Select(x => x.GetString()));
            row.ByColumn[column] = (value, reply, r.GetProperty("status").GetString()!);
        }
        string Name(string column) => em ? (column == "coherence" ? "coherent" : column) + "_score" : column;
        var inputColumns = em
            ? rows.Values.SelectMany(r => r.Fields.Select(kv => kv.Key)).Distinct().ToList()
            : ["question", "prompt", "answer", "question_id"];
        var header = inputColumns.Concat(columns.Select(Name)).Concat(columns.Select(c => c + "_reply")).ToList();
        var sb = new StringBuilder();
        sb.Append(string.Join(",", header.Select(Quote))).Append('\n');
        foreach (Row row in rows.Values)
        {
            var cells = new List<string?>();
            foreach (string c in inputColumns)
                cells.Add(c switch
                {
                    "question" => row.Question,
                    "answer" => row.Answer,
                    "prompt" when !row.Fields.ContainsKey("prompt") => row.Question,
                    "question_id" when !row.Fields.ContainsKey("question_id") => row.ItemId,
                    _ => row.Fields.TryGetPropertyValue(c, out var n) && n is not null
                        ? n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : n.ToJsonString()
                        : null,
                });
            foreach (string c in columns) cells.Add(row.ByColumn.TryGetValue(c, out var v) ? v.Score : null);
            foreach (string c in columns) cells.Add(row.ByColumn.TryGetValue(c, out var v) ? v.Reply : null);
            sb.Append(string.Join(",", cells.Select(x => Quote(x ?? "")))).Append('\n');
        }
        WriteAtomically(path, sb.ToString());
        return path;
    }

    static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Number => v.GetRawText(),
            _ => null,
        } : null;

    static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    static string Quote(string s) => s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    static void WriteAtomically(string path, string text)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = full + ".tmp";
        File.WriteAllText(tmp, text, new UTF8Encoding(false));
        File.Move(tmp, full, overwrite: true);
    }
}
