using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace SteerEngine.Tokenization;

/// <summary>
/// Splits text into pre-tokens with tokenizer.json's Split regex (behavior "Isolated": matches and
/// the gaps between them are both pieces). The pattern is written for Rust/Oniguruma, which match
/// code points; .NET matches UTF-16 units, so a supplementary character such as "𝟏" or "😀" would be
/// seen as two surrogates of category Cs. The splitter therefore runs the regex over a copy in which
/// every surrogate pair is folded into one BMP stand-in of the same Unicode category, and maps
/// the match offsets back.
/// </summary>
internal sealed class PreTokenSplitter
{
    static readonly char[] StandInByCategory = BuildStandIns();

    readonly Regex _regex;

    public PreTokenSplitter(string pattern)
    {
        _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
    }

    /// <summary>Appends (offset, length) of every pre-token of <paramref name="text"/>, relative to it.</summary>
    public void Split(ReadOnlySpan<char> text, List<(int Offset, int Length)> pieces)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            AddMatches(text, pieces, null);
            return;
        }

        var folded = new char[text.Length];
        var originalIndex = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++, n++)
        {
            originalIndex[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                folded[n] = StandInByCategory[(int)category];
                i++;
            }
            else
            {
                folded[n] = text[i];
            }
        }
        originalIndex[n] = text.Length;
        AddMatches(folded.AsSpan(0, n), pieces, originalIndex);
    }

    void AddMatches(ReadOnlySpan<char> text, List<(int, int)> pieces, int[]? originalIndex)
    {
        int end = 0;
        foreach (ValueMatch m in _regex.EnumerateMatches(text))
        {
            if (m.Length == 0)
                continue;
            if (m.Index > end)
                Add(pieces, end, m.Index, originalIndex);
            Add(pieces, m.Index, m.Index + m.Length, originalIndex);
            end = m.Index + m.Length;
        }
        if (end < text.Length)
            Add(pieces, end, text.Length, originalIndex);
    }

    static void Add(List<(int, int)> pieces, int start, int end, int[]? originalIndex)
    {
        if (originalIndex is not null)
        {
            start = originalIndex[start];
            end = originalIndex[end];
        }
        pieces.Add((start, end - start));
    }

    // For each category, the first BMP character of it above ASCII, so a stand-in never equals a
    // literal of the pattern ("'s", "\r", " ") and is whitespace only if the original was.
    static char[] BuildStandIns()
    {
        int categories = Enum.GetValues<UnicodeCategory>().Length;
        var standIns = new char[categories];
        int found = 0;
        for (int c = 0x80; c <= 0xFFFF && found < categories; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF)
                continue;
            int category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (standIns[category] == '\0')
            {
                standIns[category] = (char)c;
                found++;
            }
        }
        for (int i = 0; i < categories; i++)
            if (standIns[i] == '\0')
                standIns[i] = '\uFFFD';
        return standIns;
    }
}
