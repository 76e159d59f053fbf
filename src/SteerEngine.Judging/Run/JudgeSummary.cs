using System.Text.Json;
using SteerEngine.Judging.Data;

namespace SteerEngine.Judging.Run;

/// <summary>Per rubric: records by status and the mean score; for pairwise rubrics, a's win rate per condition (ties count half).</summary>
public sealed record RubricSummary(string Rubric, IReadOnlyDictionary<string, int> ByStatus, double? MeanScore,
    IReadOnlyDictionary<string, (int Pairs, double WinRate, int Ties)> WinRates)
{
    public int Count => ByStatus.Values.Sum();
}

public static class JudgeSummary
{
    /// <summary>Summarises a judged JSONL file (every record in it, whichever run wrote it).</summary>
    public static IReadOnlyList<RubricSummary> Of(string path)
    {
        var status = new Dictionary<string, Dictionary<string, int>>();
        var sums = new Dictionary<string, (double Sum, int N)>();
        var pairs = new Dictionary<string, Dictionary<string, (int N, double Wins, int Ties)>>();
        var order = new List<string>();
        foreach (JsonElement r in JudgeRecord.Read(path))
        {
            string rubric = r.GetProperty("rubric").GetString()!;
            if (!status.TryGetValue(rubric, out var byStatus))
            {
                status[rubric] = byStatus = [];
                order.Add(rubric);
            }
            string st = r.GetProperty("status").GetString()!;
            byStatus[st] = byStatus.GetValueOrDefault(st) + 1;
            if (r.GetProperty("score").ValueKind != JsonValueKind.Number) continue;
            double score = r.GetProperty("score").GetDouble();
            var (sum, n) = sums.GetValueOrDefault(rubric);
            sums[rubric] = (sum + score, n + 1);
            if (r.TryGetProperty("condition", out var c))
            {
                if (!pairs.TryGetValue(rubric, out var byCondition)) pairs[rubric] = byCondition = [];
                string cond = c.GetString() ?? "";
                var (pn, wins, ties) = byCondition.GetValueOrDefault(cond);
                byCondition[cond] = (pn + 1, wins + score, ties + (r.GetProperty("winner").GetString() == "tie" ? 1 : 0));
            }
        }
        return order.Select(rubric => new RubricSummary(rubric, status[rubric],
            sums.TryGetValue(rubric, out var s) && s.N > 0 ? s.Sum / s.N : null,
            pairs.TryGetValue(rubric, out var p)
                ? p.ToDictionary(kv => kv.Key, kv => (kv.Value.N, kv.Value.Wins / kv.Value.N, kv.Value.Ties))
                : new Dictionary<string, (int, double, int)>())).ToList();
    }
}
