using System.Text.Json;
using SteerEngine.Generation.Jobs;
using SteerEngine.Judging.Run;
using SteerEngine.Judging.Scoring;

namespace SteerEngine.Judging.Data;

/// <summary>
/// One line of the judged JSONL: the unit's id, item and rubric, the outcome (status, score, text
/// answer, pairwise verdict), the judge's raw replies and top log-probs, tokens and cost, then the
/// question, the answer and the input record's other fields under "fields".
/// </summary>
public static class JudgeRecord
{
    public static string Line(JudgeUnit unit, JudgeOutcome o, string provider, string model, double? cost) => JsonlOutput.ToLine(w =>
    {
        w.WriteString("id", unit.Id);
        w.WriteString("item_id", unit.Item.Id);
        w.WriteNumber("item", unit.Item.Index);
        w.WriteString("rubric", unit.Rubric.Name);
        w.WriteString("column", unit.Rubric.Column);
        w.WriteString("kind", unit.Rubric.Kind.ToString().ToLowerInvariant());
        w.WriteString("status", o.Status);
        if (o.Score is double s) w.WriteNumber("score", s); else w.WriteNull("score");
        if (o.TextAnswer is not null) w.WriteString("text_answer", o.TextAnswer);
        if (o.WeightTotal is double t) w.WriteNumber("weight_total", t);
        if (o.Verdict is { } v)
        {
            if (v.Winner is null) w.WriteNull("winner"); else w.WriteString("winner", v.Winner);
            w.WriteString("pick_a_first", Pick(v.AFirst));
            w.WriteString("pick_b_first", Pick(v.BFirst));
            w.WriteBoolean("consistent", v.Consistent);
        }
        if (unit.Condition is not null) w.WriteString("condition", unit.Condition);
        if (o.Error is not null) w.WriteString("error", o.Error);
        w.WriteStartArray("replies");
        foreach (string? r in o.Replies) w.WriteStringValue(r);
        w.WriteEndArray();
        if (o.TopLogprobs is { } top)
        {
            w.WriteStartArray("top_logprobs");
            foreach (TopLogprob x in top)
            {
                w.WriteStartObject();
                w.WriteString("token", x.Token);
                w.WriteNumber("logprob", x.Logprob);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteString("provider", provider);
        w.WriteString("judge_model", model);
        w.WriteNumber("prompt_tokens", o.PromptTokens);
        w.WriteNumber("completion_tokens", o.CompletionTokens);
        if (cost is double c) w.WriteNumber("cost", c); else w.WriteNull("cost");
        w.WriteString("question", unit.Item.Question);
        w.WriteString("answer", unit.Item.Answer);
        if (unit.Other is { } other)
        {
            w.WriteString("other_id", other.Id);
            w.WriteString("other_answer", other.Answer);
        }
        w.WritePropertyName("fields");
        unit.Item.Fields.WriteTo(w);
    });

    static string Pick(PairwisePick p) => p switch { PairwisePick.First => "first", PairwisePick.Second => "second", _ => "unparsed" };

    /// <summary>The judged records of a file, in file order (a torn last line, left by a kill, is skipped).</summary>
    public static IEnumerable<JsonElement> Read(string path)
    {
        foreach (string line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException)
            {
                continue;
            }
            using (doc) yield return doc.RootElement.Clone();
        }
    }
}
