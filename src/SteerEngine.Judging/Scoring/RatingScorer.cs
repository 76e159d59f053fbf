using System.Globalization;
using System.Text.RegularExpressions;

namespace SteerEngine.Judging.Scoring;

/// <summary>A parsed rating: Score when the reply holds exactly one valid number, TextAnswer for a rubric text answer, else neither.</summary>
public sealed record RatingScore(int? Score, string? TextAnswer)
{
    public bool Parsed => Score is not null || TextAnswer is not null;
}

/// <summary>
/// Parses an integer rating from a judge's reply. The reply must name one integer on the scale;
/// a "/max" or "out of max" after it is allowed ("7/10", "7 out of 10"). No number, two
/// different numbers, a decimal, or a number off the scale is unparsed: never guessed.
/// </summary>
public static partial class RatingScorer
{
    [GeneratedRegex(@"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*(\d+))?(?![\w])", RegexOptions.IgnoreCase)]
    private static partial Regex Number();

    public static RatingScore Parse(string reply, int min, int max, IReadOnlyList<string>? textAnswers = null)
    {
        string trimmed = reply.Trim().Trim('.', '!', '"', '\'', '*', '`').Trim();
        if (textAnswers?.FirstOrDefault(a => string.Equals(a, trimmed, StringComparison.OrdinalIgnoreCase)) is string text)
            return new RatingScore(null, text);
        var values = new HashSet<int>();
        foreach (Match m in Number().Matches(reply))
        {
            string number = m.Groups[1].Value;
            if (number.Contains('.')) return new RatingScore(null, null);
            if (m.Groups[2].Success && m.Groups[2].Value != max.ToString(CultureInfo.InvariantCulture)) return new RatingScore(null, null);
            if (!int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out int v)) return new RatingScore(null, null);
            values.Add(v);
        }
        if (values.Count != 1) return new RatingScore(null, null);
        int score = values.First();
        return score >= min && score <= max ? new RatingScore(score, null) : new RatingScore(null, null);
    }
}
