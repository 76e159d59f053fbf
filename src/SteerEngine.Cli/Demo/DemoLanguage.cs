using System.Text;
using System.Text.Json;

namespace SteerEngine.Cli.Demo;

/// <summary>What <see cref="DemoLanguage.Measure"/> finds in one text.</summary>
/// <param name="Sentences">complete sentences (ending in a full stop)</param>
/// <param name="WellFormed">of those, the ones the grammar accepts</param>
/// <param name="Counts">trait value ("happy", "sad", "formal", "casual") → words of it in the text</param>
/// <param name="Rates">trait ("mood", "formality") → share of its first value among its words; null when the text has none</param>
public sealed record DemoMeasure(int Sentences, int WellFormed, IReadOnlyDictionary<string, int> Counts, IReadOnlyDictionary<string, double?> Rates)
{
    /// <summary>Well-formed share of the complete sentences; 0 for a text with none.</summary>
    public double Coherence => Sentences == 0 ? 0 : (double)WellFormed / Sentences;
}

/// <summary>
/// The demo model's language, read from its lexicon.json: word classes carrying two traits (mood:
/// happy / sad; formality: formal / casual) and the grammar lines every sentence of the training
/// corpus follows. Measures a text exactly as models/demo/corpus.py does: trait rates over every
/// word, coherence as the share of complete sentences that match a grammar line, carry at least one
/// word of each trait, and keep each trait's value within the sentence.
/// </summary>
public sealed class DemoLanguage
{
    readonly Dictionary<string, (string Class, string Value)> _words = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _traitOfValue = new(StringComparer.Ordinal);
    readonly List<string[]> _patterns = [];

    /// <summary>Trait name → its two values, first the one whose rate is reported ("mood" → happy, sad).</summary>
    public IReadOnlyDictionary<string, (string Positive, string Negative)> Traits { get; }

    DemoLanguage(JsonElement root, string path)
    {
        var traits = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (JsonProperty trait in root.GetProperty("traits").EnumerateObject())
        {
            string[] values = trait.Value.EnumerateArray().Select(v => v.GetString()!).ToArray();
            if (values.Length != 2) throw new InvalidDataException($"{path}: trait {trait.Name} needs exactly two values");
            traits[trait.Name] = (values[0], values[1]);
            _traitOfValue[values[0]] = trait.Name;
            _traitOfValue[values[1]] = trait.Name;
        }
        Traits = traits;
        foreach (JsonProperty cls in root.GetProperty("classes").EnumerateObject())
            foreach (JsonProperty value in cls.Value.EnumerateObject())
                foreach (JsonElement word in value.Value.EnumerateArray())
                    if (!_words.TryAdd(word.GetString()!, (cls.Name, value.Name)))
                        throw new InvalidDataException($"{path}: word '{word.GetString()}' is in two classes");
        foreach (JsonElement line in root.GetProperty("grammar").EnumerateArray())
            _patterns.AddRange(Expand(line.GetString()!));
    }

    public static DemoLanguage Load(string lexiconPath)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(lexiconPath));
            return new DemoLanguage(doc.RootElement, lexiconPath);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"{lexiconPath}: not a demo-language lexicon ({e.Message})", e);
        }
    }

    /// <summary>"happy", "sad", "formal" or "casual" for a trait word; null for any other word.</summary>
    public string? TraitValue(string word) =>
        _words.TryGetValue(word, out var info) && _traitOfValue.ContainsKey(info.Value) ? info.Value : null;

    public DemoMeasure Measure(string text)
    {
        string[] tokens = Tokens(text);
        var counts = _traitOfValue.Keys.ToDictionary(v => v, _ => 0, StringComparer.Ordinal);
        foreach (string t in tokens)
            if (TraitValue(t) is string value)
                counts[value]++;

        int sentences = 0, good = 0;
        var current = new List<string>();
        foreach (string t in tokens)
        {
            current.Add(t);
            if (t != ".") continue;
            sentences++;
            if (SentenceOk(current)) good++;
            current.Clear();
        }

        var rates = new Dictionary<string, double?>(StringComparer.Ordinal);
        foreach ((string trait, (string a, string b)) in Traits)
        {
            int total = counts[a] + counts[b];
            rates[trait] = total == 0 ? null : (double)counts[a] / total;
        }
        return new DemoMeasure(sentences, good, counts, rates);
    }

    /// <summary>True when the words (the last one ".") form a well-formed sentence.</summary>
    public bool SentenceOk(IReadOnlyList<string> words)
    {
        if (!_patterns.Any(p => Matches(p, words))) return false;
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string w in words)
        {
            if (TraitValue(w) is not string value) continue;
            string trait = _traitOfValue[value];
            if (seen.TryGetValue(trait, out string? earlier) && earlier != value) return false;
            seen[trait] = value;
        }
        return Traits.Keys.All(seen.ContainsKey);
    }

    bool Matches(string[] pattern, IReadOnlyList<string> words)
    {
        if (pattern.Length != words.Count) return false;
        for (int i = 0; i < pattern.Length; i++)
        {
            string slot = pattern[i];
            bool isClass = slot.Any(char.IsLetter) && slot.ToUpperInvariant() == slot;
            if (isClass ? !(_words.TryGetValue(words[i], out var info) && info.Class == slot) : slot != words[i])
                return false;
        }
        return true;
    }

    /// <summary>Lower-cased words with . , ? ! as tokens of their own.</summary>
    static string[] Tokens(string text)
    {
        var spaced = new StringBuilder(text.Length + 16);
        foreach (char c in text.ToLowerInvariant())
        {
            if (c is '.' or ',' or '?' or '!') spaced.Append(' ').Append(c).Append(' ');
            else spaced.Append(c);
        }
        return spaced.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>A grammar line → every slot sequence it allows: "[A B]" is an optional group, "X?" an optional slot.</summary>
    static List<string[]> Expand(string line)
    {
        string[] tokens = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var results = new List<List<string>> { new() };
        for (int i = 0; i < tokens.Length; i++)
        {
            string t = tokens[i];
            if (t.StartsWith('['))
            {
                int j = i;
                while (!tokens[j].EndsWith(']')) j++;
                var group = tokens[i..(j + 1)].Select(g => g.Trim('[', ']')).Where(g => g.Length > 0).ToList();
                results = [.. results.Select(r => r.Concat(group).ToList()), .. results.Select(r => r.ToList())];
                i = j;
            }
            else if (t.EndsWith('?'))
            {
                string slot = t[..^1];
                results = [.. results.Select(r => r.Append(slot).ToList()), .. results.Select(r => r.ToList())];
            }
            else
            {
                results.ForEach(r => r.Add(t));
            }
        }
        return results.Select(r => r.ToArray()).ToList();
    }
}
