using System.Globalization;

namespace SteerEngine.Judging.Scoring;

/// <summary>One of the top candidates for a generated token, as the API reports it.</summary>
public sealed record TopLogprob(string Token, double Logprob);

/// <summary>
/// The logprob-weighted score: Score is null when the integer tokens' total probability is under
/// the threshold; TextAnswer is set (and Score null) when no score was given and the most likely
/// other token begins one of the rubric's text answers (CODE, REFUSAL).
/// </summary>
public sealed record WeightedScore(double? Score, double Total, int IntegerTokens, string? TextAnswer);

/// <summary>
/// Probability-weighted mean of the top tokens that read as integers in [min, max], normalised by
/// their total probability: Σ p·v / Σ p over those tokens, null when Σ p &lt; 0.25. A token reads
/// as an integer when, with surrounding whitespace trimmed, it is only ASCII digits (" 7" and
/// "07" are 7; "101" is out of a 0–100 scale; "7.", "+7", "seven" are not integers). Tokens that
/// read as the same integer all count.
/// </summary>
public static class WeightedScorer
{
    public const double MinimumTotal = 0.25;

    public static WeightedScore Score(IReadOnlyList<TopLogprob> top, int min = 0, int max = 100, IReadOnlyList<string>? textAnswers = null)
    {
        double total = 0, weighted = 0;
        int integers = 0;
        foreach (TopLogprob t in top)
        {
            if (ReadInteger(t.Token) is not int v || v < min || v > max) continue;
            double p = Math.Exp(t.Logprob);
            total += p;
            weighted += p * v;
            integers++;
        }
        if (total >= MinimumTotal) return new WeightedScore(weighted / total, total, integers, null);
        return new WeightedScore(null, total, integers, TextAnswer(top, textAnswers));
    }

    /// <summary>The integer a token reads as, or null.</summary>
    public static int? ReadInteger(string token)
    {
        string s = token.Trim();
        if (s.Length == 0 || s.Length > 9) return null;
        foreach (char c in s)
            if (c is < '0' or > '9') return null;
        return int.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);
    }

    static string? TextAnswer(IReadOnlyList<TopLogprob> top, IReadOnlyList<string>? textAnswers)
    {
        if (textAnswers is not { Count: > 0 }) return null;
        TopLogprob? best = null;
        foreach (TopLogprob t in top)
            if (ReadInteger(t.Token) is null && (best is null || t.Logprob > best.Logprob)) best = t;
        string s = best?.Token.Trim() ?? "";
        if (s.Length == 0) return null;
        // One token of output may hold only the start of the word ("REF" for REFUSAL).
        return textAnswers.FirstOrDefault(a => a.StartsWith(s, StringComparison.Ordinal) && (s.Length >= 2 || a.Length == 1));
    }
}
