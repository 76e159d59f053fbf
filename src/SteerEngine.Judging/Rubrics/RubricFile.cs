using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SteerEngine.Judging.Rubrics;

/// <summary>
/// Reads a rubric from YAML or JSON (JSON is read as YAML's flow style). Keys:
/// <c>name</c>, <c>kind</c> (rating | pairwise | weighted), <c>prompt</c>, <c>system</c>,
/// <c>scale</c> ({min, max} or [min, max]), <c>examples</c> ([{user, assistant}]),
/// <c>text_answers</c>, <c>choices</c> ({a, b}), <c>output_column</c>, <c>max_tokens</c>,
/// <c>description</c>. An unknown key or a wrong type is an error naming the file and key.
/// </summary>
public static class RubricFile
{
    static readonly HashSet<string> Keys = ["name", "kind", "prompt", "system", "scale", "examples", "text_answers", "choices",
                                            "output_column", "max_tokens", "description"];

    public static Rubric Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: rubric file not found");
        return Parse(File.ReadAllText(path), path, Path.GetFileNameWithoutExtension(path));
    }

    public static Rubric Parse(string text, string source, string defaultName)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new InvalidDataException($"{source}: not valid YAML/JSON at line {e.Start.Line}: {e.Message}");
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new InvalidDataException($"{source}: a rubric is one mapping (object) of keys");
        var map = new Dictionary<string, YamlNode>();
        foreach (var (k, v) in root.Children)
        {
            string key = ((YamlScalarNode)k).Value ?? "";
            if (!Keys.Contains(key)) throw new InvalidDataException($"{source}: unknown key '{key}' (expected {string.Join(", ", Keys)})");
            map[key] = v;
        }
        string? Str(string key) => map.TryGetValue(key, out var n) ? Scalar(n, source, key) : null;
        string kindText = Str("kind") ?? throw new InvalidDataException($"{source}: 'kind' is missing (rating, pairwise or weighted)");
        ScorerKind kind = kindText.ToLowerInvariant() switch
        {
            "rating" => ScorerKind.Rating,
            "pairwise" => ScorerKind.Pairwise,
            "weighted" or "logprob" => ScorerKind.Weighted,
            _ => throw new InvalidDataException($"{source}: kind '{kindText}' is not rating, pairwise or weighted"),
        };
        var (min, max) = kind == ScorerKind.Weighted ? (0, 100) : (1, 10);
        if (map.TryGetValue("scale", out var scale)) (min, max) = Scale(scale, source);
        var rubric = new Rubric
        {
            Name = Str("name") ?? defaultName,
            Kind = kind,
            Prompt = Str("prompt") ?? throw new InvalidDataException($"{source}: 'prompt' is missing"),
            System = Str("system"),
            ScaleMin = min,
            ScaleMax = max,
            Examples = map.TryGetValue("examples", out var ex) ? Examples(ex, source) : [],
            TextAnswers = map.TryGetValue("text_answers", out var ta) ? Sequence(ta, source, "text_answers") : [],
            OutputColumn = Str("output_column"),
            MaxTokens = Str("max_tokens") is string mt ? Int(mt, source, "max_tokens") : 0,
        };
        if (map.TryGetValue("choices", out var ch))
        {
            if (ch is not YamlMappingNode cm) throw new InvalidDataException($"{source}: 'choices' must be a mapping {{a: ..., b: ...}}");
            var choices = cm.Children.ToDictionary(p => ((YamlScalarNode)p.Key).Value ?? "", p => Scalar(p.Value, source, "choices"));
            rubric = rubric with
            {
                ChoiceA = choices.GetValueOrDefault("a") ?? throw new InvalidDataException($"{source}: 'choices' needs 'a'"),
                ChoiceB = choices.GetValueOrDefault("b") ?? throw new InvalidDataException($"{source}: 'choices' needs 'b'"),
            };
        }
        rubric.Validate(source);
        return rubric;
    }

    static string Scalar(YamlNode node, string source, string key) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw new InvalidDataException($"{source}: '{key}' must be a single value");

    static int Int(string text, string source, string key) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new InvalidDataException($"{source}: '{key}' is '{text}', expected an integer");

    static (int, int) Scale(YamlNode node, string source)
    {
        if (node is YamlMappingNode m)
        {
            var d = m.Children.ToDictionary(p => ((YamlScalarNode)p.Key).Value ?? "", p => Scalar(p.Value, source, "scale"));
            if (!d.TryGetValue("min", out var lo) || !d.TryGetValue("max", out var hi))
                throw new InvalidDataException($"{source}: 'scale' needs min and max");
            return (Int(lo, source, "scale.min"), Int(hi, source, "scale.max"));
        }
        if (node is YamlSequenceNode s && s.Children.Count == 2)
            return (Int(Scalar(s.Children[0], source, "scale"), source, "scale"), Int(Scalar(s.Children[1], source, "scale"), source, "scale"));
        throw new InvalidDataException($"{source}: 'scale' must be {{min, max}} or [min, max]");
    }

    static List<string> Sequence(YamlNode node, string source, string key) =>
        node is YamlSequenceNode s ? s.Children.Select(c => Scalar(c, source, key)).ToList()
            : throw new InvalidDataException($"{source}: '{key}' must be a list");

    static List<FewShotExample> Examples(YamlNode node, string source)
    {
        if (node is not YamlSequenceNode s) throw new InvalidDataException($"{source}: 'examples' must be a list of {{user, assistant}}");
        var list = new List<FewShotExample>();
        foreach (YamlNode item in s.Children)
        {
            if (item is not YamlMappingNode m) throw new InvalidDataException($"{source}: each example must be {{user, assistant}}");
            var d = m.Children.ToDictionary(p => ((YamlScalarNode)p.Key).Value ?? "", p => Scalar(p.Value, source, "examples"));
            if (!d.TryGetValue("user", out var u) || !d.TryGetValue("assistant", out var a))
                throw new InvalidDataException($"{source}: example {list.Count + 1} needs 'user' and 'assistant'");
            list.Add(new FewShotExample(u, a));
        }
        return list;
    }
}
