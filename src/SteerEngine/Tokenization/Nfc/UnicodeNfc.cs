using System.Globalization;
using System.Reflection;
using System.Text;

namespace SteerEngine.Tokenization.Nfc;

/// <summary>
/// Unicode Normalization Form C (UAX #15) in managed code, for tokenizers that declare an NFC
/// normalizer (Qwen3). <c>string.Normalize</c> is not used: under InvariantGlobalization (as this
/// repository builds, and as many hosts run) it has no tables, and elsewhere it depends on the
/// machine's ICU version. The data is nfc-table.txt (Unicode 15.0, from Debian's unicode-data;
/// make_table.py regenerates it), so every host normalizes the same way.
/// Steps: full canonical decomposition (Hangul syllables by arithmetic), canonical ordering of
/// combining marks, then canonical composition of each starter with the marks that follow it.
/// </summary>
public static class UnicodeNfc
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    /// <summary>No code point below U+0300 changes under NFC, nor combines with what precedes it.</summary>
    const int FirstAffected = 0x300;

    sealed record Tables(Dictionary<int, byte> Classes, Dictionary<int, int[]> Decompositions, Dictionary<long, int> Compositions);

    static readonly Lazy<Tables> Data = new(Load);

    /// <summary>The NFC form of <paramref name="text"/>; the same string when nothing changes. Lone surrogates pass through.</summary>
    public static string Normalize(string text)
    {
        foreach (char c in text)
            if (c >= FirstAffected) return Compose(Decompose(text));
        return text;
    }

    /// <summary>The algorithm without the fast path for text below U+0300 (tests check that path).</summary>
    internal static string NormalizeFully(string text) => Compose(Decompose(text));

    /// <summary>The canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int code) => Data.Value.Classes.TryGetValue(code, out byte c) ? c : 0;

    static List<int> Decompose(string text)
    {
        var output = new List<int>(text.Length + 8);
        for (int i = 0; i < text.Length; i++)
        {
            int code = text[i];
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                code = char.ConvertToUtf32(text[i], text[++i]);
            AppendDecomposed(code, output);
        }
        // Canonical ordering: each run of non-starters sorted by class, stably (insertion sort).
        for (int i = 1; i < output.Count; i++)
        {
            int c = CombiningClass(output[i]);
            if (c == 0) continue;
            int code = output[i], j = i;
            while (j > 0 && CombiningClass(output[j - 1]) > c)
            {
                output[j] = output[j - 1];
                j--;
            }
            output[j] = code;
        }
        return output;
    }

    static void AppendDecomposed(int code, List<int> output)
    {
        if (code is >= SBase and < SBase + SCount)
        {
            int s = code - SBase;
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (Data.Value.Decompositions.TryGetValue(code, out int[]? parts))
            foreach (int part in parts) AppendDecomposed(part, output);
        else
            output.Add(code);
    }

    /// <summary>
    /// Canonical composition: a mark joins the last starter when a primary composite exists and no
    /// character between them is a starter or has a class at least its own (it is not blocked).
    /// </summary>
    static string Compose(List<int> codes)
    {
        if (codes.Count == 0) return "";
        int starterAt = 0, kept = 1;
        int lastClass = CombiningClass(codes[0]) == 0 ? 0 : 256; // a leading mark has no starter to join
        for (int i = 1; i < codes.Count; i++)
        {
            int code = codes[i], cls = CombiningClass(code);
            // lastClass is 0 only while nothing stands between the starter and this character.
            if ((lastClass < cls || lastClass == 0) && TryCompose(codes[starterAt], code, out int composite))
            {
                codes[starterAt] = composite;
                continue;
            }
            if (cls == 0) starterAt = kept;
            lastClass = cls;
            codes[kept++] = code;
        }
        var text = new StringBuilder(kept + 4);
        for (int i = 0; i < kept; i++)
        {
            if (codes[i] is >= 0xD800 and <= 0xDFFF) text.Append((char)codes[i]); // a lone surrogate from the input
            else text.Append(char.ConvertFromUtf32(codes[i]));
        }
        return text.ToString();
    }

    static bool TryCompose(int first, int second, out int composite)
    {
        if (first is >= LBase and < LBase + LCount && second is >= VBase and < VBase + VCount)
        {
            composite = SBase + ((first - LBase) * VCount + second - VBase) * TCount;
            return true;
        }
        if (first is >= SBase and < SBase + SCount && (first - SBase) % TCount == 0 && second is > TBase and < TBase + TCount)
        {
            composite = first + second - TBase;
            return true;
        }
        return Data.Value.Compositions.TryGetValue(Pair(first, second), out composite);
    }

    static long Pair(int first, int second) => (long)first << 21 | (uint)second;

    static Tables Load()
    {
        using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("SteerEngine.Unicode.nfc-table.txt")
            ?? throw new InvalidOperationException("the NFC table is not embedded in SteerEngine.dll");
        using var reader = new StreamReader(stream);
        var classes = new Dictionary<int, byte>();
        var decompositions = new Dictionary<int, int[]>();
        var excluded = new HashSet<int>();
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            string[] f = line.Split(';');
            int code = Hex(f[0]);
            if (f[1] == "x")
            {
                excluded.Add(code);
                continue;
            }
            if (f[1] != "0") classes[code] = byte.Parse(f[1], CultureInfo.InvariantCulture);
            if (f[2].Length > 0) decompositions[code] = f[2].Split(' ').Select(Hex).ToArray();
        }
        // Primary composites: two-part canonical decompositions of a starter into a starter and a
        // second character, less the explicit exclusions. (Singletons and decompositions that start
        // with a mark never recompose: the full composition exclusion.)
        var compositions = new Dictionary<long, int>();
        foreach (var (code, parts) in decompositions)
        {
            bool nonStarter = classes.ContainsKey(code) || classes.ContainsKey(parts[0]);
            if (parts.Length == 2 && !nonStarter && !excluded.Contains(code))
                compositions[Pair(parts[0], parts[1])] = code;
        }
        return new Tables(classes, decompositions, compositions);
    }

    static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
