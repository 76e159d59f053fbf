using System.Text.RegularExpressions;

namespace SteerEngine.Tokenization;

/// <summary>
/// Finds added tokens (such as "&lt;|eot_id|&gt;") written verbatim in input text, leftmost and
/// longest first, as Hugging Face tokenizers do before any other splitting.
/// </summary>
internal sealed class AddedTokenMatcher
{
    /// <summary>A stretch of the input: an added token (TokenId ≥ 0) or ordinary text (TokenId = -1).</summary>
    public readonly record struct Segment(int Offset, int Length, int TokenId);

    readonly Regex? _regex;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idsBySpan;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AddedToken token in tokens)
            ids[token.Content] = token.Id;
        _idsBySpan = ids.GetAlternateLookup<ReadOnlySpan<char>>();

        // Longer alternatives first turn the regex's leftmost-first choice into leftmost-longest.
        if (ids.Count > 0)
        {
            var alternatives = ids.Keys.OrderByDescending(k => k.Length).ThenBy(k => k, StringComparer.Ordinal).Select(Regex.Escape);
            _regex = new Regex(string.Join("|", alternatives), RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
    }

    public void Split(ReadOnlySpan<char> text, List<Segment> segments)
    {
        int end = 0;
        if (_regex is not null)
        {
            foreach (ValueMatch m in _regex.EnumerateMatches(text))
            {
                if (m.Index > end)
                    segments.Add(new Segment(end, m.Index - end, -1));
                segments.Add(new Segment(m.Index, m.Length, _idsBySpan[text.Slice(m.Index, m.Length)]));
                end = m.Index + m.Length;
            }
        }
        if (end < text.Length)
            segments.Add(new Segment(end, text.Length - end, -1));
    }
}
