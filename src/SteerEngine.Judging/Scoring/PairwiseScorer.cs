namespace SteerEngine.Judging.Scoring;

/// <summary>The judge's pick in one order: the answer shown first, the one shown second, or unparsed.</summary>
public enum PairwisePick { First, Second, Unparsed }

/// <summary>
/// The result of judging a pair in both orders. Winner is "a" (the item's answer), "b" (the
/// answer it is compared with), "tie" when each order picked the answer in the same position
/// (the judge followed the position, not the content: a disagreement), or null when a reply was
/// unparsed.
/// </summary>
public sealed record PairwiseVerdict(string? Winner, PairwisePick AFirst, PairwisePick BFirst)
{
    public bool Consistent => Winner is "a" or "b";
    /// <summary>a's share of the pair: 1 if a won, 0 if b won, ½ for a tie, null if unparsed.</summary>
    public double? WinShare => Winner switch { "a" => 1.0, "b" => 0.0, "tie" => 0.5, _ => null };
}

/// <summary>Reads which answer a reply picks, and combines the two orders of a pair.</summary>
public static class PairwiseScorer
{
    /// <summary>The reply, without quotes, punctuation and a leading "Answer", must be the first or the second choice.</summary>
    public static PairwisePick Parse(string reply, string choiceFirst, string choiceSecond)
    {
        string s = reply.Trim().Trim('.', '!', '"', '\'', '*', '`', ':', '(', ')').Trim();
        if (s.StartsWith("answer ", StringComparison.OrdinalIgnoreCase)) s = s["answer ".Length..].Trim();
        if (string.Equals(s, choiceFirst, StringComparison.OrdinalIgnoreCase)) return PairwisePick.First;
        if (string.Equals(s, choiceSecond, StringComparison.OrdinalIgnoreCase)) return PairwisePick.Second;
        return PairwisePick.Unparsed;
    }

    /// <summary>Order 1 shows a first, order 2 shows b first.</summary>
    public static PairwiseVerdict Combine(PairwisePick aFirst, PairwisePick bFirst)
    {
        string? winner = (aFirst, bFirst) switch
        {
            (PairwisePick.Unparsed, _) or (_, PairwisePick.Unparsed) => null,
            (PairwisePick.First, PairwisePick.Second) => "a",
            (PairwisePick.Second, PairwisePick.First) => "b",
            _ => "tie",
        };
        return new PairwiseVerdict(winner, aFirst, bFirst);
    }
}
