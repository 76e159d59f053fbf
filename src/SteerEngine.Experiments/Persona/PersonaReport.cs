using System.Globalization;
using System.Text;
using SteerEngine.Capture;

namespace SteerEngine.Experiments.Persona;

/// <summary>The run's report: effective pairs, score means, per-entry vector norms and the monitoring check, and hints when few pairs survive.</summary>
public static class PersonaReport
{
    /// <summary>Below this share of effective pairs the report says what to try.</summary>
    public const double FewPairs = 0.2;

    public static string Markdown(string trait, PersonaPairs pairs, double threshold, float[][] vector, IReadOnlyList<MonitorEntry> monitor)
    {
        var sb = new StringBuilder();
        string F(double x) => x.ToString("0.00", CultureInfo.InvariantCulture);
        sb.Append($"# persona vector: {trait}\n\n");
        sb.Append($"effective pairs: {pairs.Effective.Count} of {pairs.Positive.Count} (pos {trait} ≥ {threshold}, neg < {100 - threshold}, both coherence ≥ 50); {pairs.MissingScores} rows with a missing score\n\n");
        sb.Append("| kind | mean trait | mean coherence |\n|---|---|---|\n");
        foreach (var (kind, rows) in new[] { ("pos", pairs.Positive), ("neg", pairs.Negative) })
            sb.Append($"| {kind} | {F(Mean(rows.Select(r => r.Trait)))} | {F(Mean(rows.Select(r => r.Coherence)))} |\n");
        sb.Append("\nper entry (entry e = output of block e−1; steer block e−1 with row e): the vector's norm, and on the eval questions the mean ")
          .Append("projection gap of pos- over neg-instructed prompts (last prompt token) and the share of pairs it orders right\n\n");
        sb.Append("| entry (block) | norm | monitor gap | monitor accuracy |\n|---|---|---|---|\n");
        foreach (MonitorEntry m in monitor)
        {
            double norm = Math.Sqrt(vector[m.Entry].Sum(x => (double)x * x));
            sb.Append($"| {(m.Entry == 0 ? "0 (embeddings)" : $"{m.Entry} (block {m.Entry - 1})")} | {F(norm)} | {F(m.MeanGap)} | {F(m.Accuracy)} |\n");
        }
        MonitorEntry best = monitor.Skip(1).OrderByDescending(m => m.Accuracy).ThenByDescending(m => m.MeanGap).FirstOrDefault() ?? monitor[0];
        sb.Append($"\nbest monitoring entry: {best.Entry} (block {best.Entry - 1}), accuracy {F(best.Accuracy)}\n");
        var hints = Hints(pairs, threshold);
        if (hints.Count > 0) sb.Append("\n## troubleshooting\n\n").Append(string.Concat(hints.Select(h => $"- {h}\n")));
        return sb.ToString();
    }

    /// <summary>What to try when few pairs pass the filters: which filter removes them, and the knob for it.</summary>
    public static IReadOnlyList<string> Hints(PersonaPairs pairs, double threshold)
    {
        int n = pairs.Positive.Count;
        if (n == 0) return ["the CSVs have no rows: check that the trait file has questions and instructions"];
        if (pairs.Effective.Count >= FewPairs * n) return [];
        var hints = new List<string>();
        int posLow = pairs.Positive.Count(r => !(r.Trait >= threshold)), negHigh = pairs.Negative.Count(r => !(r.Trait < 100 - threshold));
        int incoherent = pairs.Positive.Concat(pairs.Negative).Count(r => !(r.Coherence >= 50));
        if (pairs.MissingScores > 0)
            hints.Add($"{pairs.MissingScores} rows lack a score: the judge failed or answered outside 0-100 (see the *_judged.jsonl replies); run again to retry failed calls");
        if (posLow > n / 2)
            hints.Add($"{posLow} of {n} pos answers score below {threshold}: the model does not follow the pos instructions; make them more explicit (steer persona new again, or edit trait_data_extract), or lower --threshold");
        if (negHigh > n / 2)
            hints.Add($"{negHigh} of {n} neg answers score {100 - threshold} or more: the neg instructions do not suppress the trait; make them state the opposite plainly");
        if (incoherent > n / 2)
            hints.Add($"{incoherent} answers have coherence below 50: raise --max-new-tokens if answers are cut off, lower --temperature, or check the coherence rubric suits the model");
        hints.Add("more samples give more pairs: raise --n-per-question; delete the step's files (NAME_pos*, NAME_neg*) to regenerate them");
        return hints;
    }

    static double Mean(IEnumerable<double?> xs)
    {
        var v = xs.Where(x => x is not null).Select(x => x!.Value).ToList();
        return v.Count == 0 ? double.NaN : v.Average();
    }
}
