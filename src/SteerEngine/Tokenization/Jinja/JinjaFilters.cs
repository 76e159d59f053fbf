using System.Globalization;
using System.Text;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>The filters (<c>value | name(args)</c>) chat templates use, with Jinja2's argument names.</summary>
internal static class JinjaFilters
{
    static readonly HashSet<string> Names =
    [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "first", "float", "indent", "int",
        "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title",
        "tojson", "trim", "unique", "upper",
    ];

    public static bool Exists(string name) => Names.Contains(name);

    public static object? Apply(string name, object? value, List<object?> args, JinjaDict kwargs)
    {
        object? Param(int position, string key, object? fallback) =>
            position < args.Count ? args[position] : kwargs.TryGetValue(key, out object? v) ? v : fallback;

        switch (name)
        {
            case "trim":
                return JinjaMethods.Strip(JinjaValues.ToStr(value), Param(0, "chars", null) as string, start: true, end: true);
            case "tojson":
                return JinjaJson.Serialize(value,
                    Param(0, "indent", null) is { } indent ? (int)JinjaValues.ToLong(indent) : null,
                    JinjaValues.IsTrue(Param(1, "ensure_ascii", false)),
                    JinjaValues.IsTrue(Param(3, "sort_keys", false)),
                    Param(2, "separators", null) is List<object?> { Count: 2 } seps ? (JinjaValues.ToStr(seps[0]), JinjaValues.ToStr(seps[1])) : null);
            case "length" or "count":
                return JinjaValues.Length(value);
            case "upper":
                return JinjaValues.ToStr(value).ToUpperInvariant();
            case "lower":
                return JinjaValues.ToStr(value).ToLowerInvariant();
            case "title":
                return Title(JinjaValues.ToStr(value));
            case "capitalize":
                return Capitalize(JinjaValues.ToStr(value));
            case "default" or "d":
                bool boolean = JinjaValues.IsTrue(Param(1, "boolean", false));
                return value is Undefined || (boolean && !JinjaValues.IsTrue(value)) ? Param(0, "default_value", "") : value;
            case "first":
                return JinjaValues.Iterate(value) is { Count: > 0 } items ? items[0] : new Undefined("first");
            case "last":
                return JinjaValues.Iterate(value) is { Count: > 0 } all ? all[^1] : new Undefined("last");
            case "join":
                var separator = JinjaValues.ToStr(Param(0, "d", ""));
                var attribute = Param(1, "attribute", null) as string;
                return string.Join(separator, JinjaValues.Iterate(value).Select(x => JinjaValues.ToStr(attribute is null ? x : JinjaMethods.GetItem(x, attribute))));
            case "items":
                return value is Undefined ? new List<object?>()
                    : value is JinjaDict dict ? dict.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()
                    : throw new JinjaRuntimeException($"items filter needs a dict, got {JinjaValues.TypeName(value)}");
            case "dictsort":
                return value is JinjaDict sortable
                    ? sortable.OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()
                    : throw new JinjaRuntimeException($"dictsort filter needs a dict, got {JinjaValues.TypeName(value)}");
            case "string":
                return JinjaValues.ToStr(value);
            case "list":
                return JinjaValues.Iterate(value).ToList();
            case "int":
                return ToInt(value, Param(0, "default", 0L));
            case "float":
                return ToFloat(value, Param(0, "default", 0.0));
            case "abs":
                return value is double d ? Math.Abs(d) : (object)Math.Abs(JinjaValues.ToLong(value));
            case "round":
                int digits = (int)JinjaValues.ToLong(Param(0, "precision", 0L));
                string method = JinjaValues.ToStr(Param(1, "method", "common"));
                double x = JinjaValues.ToDouble(value), scale = Math.Pow(10, digits);
                return method switch
                {
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    "floor" => Math.Floor(x * scale) / scale,
                    _ => Math.Round(x, digits, MidpointRounding.AwayFromZero),
                };
            case "replace":
                return JinjaMethods.Replace(JinjaValues.ToStr(value), JinjaValues.ToStr(Param(0, "old", "")), JinjaValues.ToStr(Param(1, "new", "")),
                    Param(2, "count", null) is { } c ? JinjaValues.ToLong(c) : -1);
            case "reverse":
                return value is string s ? string.Concat(JinjaMethods.CodePoints(s).Reverse()) : JinjaValues.Iterate(value).AsEnumerable().Reverse().ToList();
            case "sort":
                return Sort(value, JinjaValues.IsTrue(Param(0, "reverse", false)), JinjaValues.IsTrue(Param(1, "case_sensitive", false)), Param(2, "attribute", null) as string);
            case "unique":
                var unique = new List<object?>();
                foreach (object? item in JinjaValues.Iterate(value))
                    if (!unique.Any(u => JinjaValues.AreEqual(u, item)))
                        unique.Add(item);
                return unique;
            case "select" or "reject":
                return JinjaValues.Iterate(value).Where(item => Passes(item, args, 0) == (name == "select")).ToList();
            case "selectattr" or "rejectattr":
                string key = JinjaValues.ToStr(Param(0, "attribute", null));
                return JinjaValues.Iterate(value).Where(item => Passes(JinjaMethods.GetItem(item, key), args, 1) == (name == "selectattr")).ToList();
            case "map":
                return Map(value, args, kwargs);
            case "attr":
                return JinjaMethods.GetAttribute(value, JinjaValues.ToStr(Param(0, "name", "")));
            case "indent":
                return Indent(JinjaValues.ToStr(value), Param(0, "width", 4L), JinjaValues.IsTrue(Param(1, "first", false)), JinjaValues.IsTrue(Param(2, "blank", false)));
            case "safe":
                return value;
            case "sum":
                var summed = Param(0, "attribute", null) is string a ? JinjaValues.Iterate(value).Select(i => JinjaMethods.GetItem(i, a)) : JinjaValues.Iterate(value);
                return summed.Aggregate(Param(1, "start", 0L), (acc, i) => JinjaOperators.Binary("+", acc, i));
            case "min" or "max":
                var candidates = JinjaValues.Iterate(value);
                if (candidates.Count == 0) return new Undefined(name);
                return candidates.Aggregate((p, q) => (JinjaValues.Compare(q, p) < 0) == (name == "min") ? q : p);
            default:
                throw new JinjaRuntimeException($"unknown filter '{name}'");
        }
    }

    // select / reject / selectattr / rejectattr: args from testAt on are the test name and its arguments.
    static bool Passes(object? value, List<object?> args, int testAt)
    {
        if (args.Count <= testAt)
            return JinjaValues.IsTrue(value);
        string test = JinjaValues.ToStr(args[testAt]);
        if (!JinjaPredicates.Exists(test))
            throw new JinjaRuntimeException($"unknown test '{test}'");
        return JinjaPredicates.Test(test, value, args.Skip(testAt + 1).ToList());
    }

    static List<object?> Map(object? value, List<object?> args, JinjaDict kwargs)
    {
        List<object?> items = JinjaValues.Iterate(value);
        if (kwargs.TryGetValue("attribute", out object? attribute))
        {
            bool hasDefault = kwargs.TryGetValue("default", out object? fallback);
            return items.Select(item => JinjaMethods.GetItem(item, JinjaValues.ToStr(attribute)) is Undefined && hasDefault
                ? fallback : JinjaMethods.GetItem(item, JinjaValues.ToStr(attribute))).ToList();
        }
        if (args.Count == 0)
            throw new JinjaRuntimeException("map needs a filter name or attribute=");
        string filter = JinjaValues.ToStr(args[0]);
        if (!Exists(filter))
            throw new JinjaRuntimeException($"unknown filter '{filter}'");
        return items.Select(item => Apply(filter, item, args.Skip(1).ToList(), new JinjaDict())).ToList();
    }

    static List<object?> Sort(object? value, bool reverse, bool caseSensitive, string? attribute)
    {
        object? Key(object? item)
        {
            object? k = attribute is null ? item : JinjaMethods.GetItem(item, attribute);
            return !caseSensitive && k is string s ? s.ToLowerInvariant() : k;
        }
        var sorted = JinjaValues.Iterate(value).ToList();
        var keyed = sorted.Select((item, index) => (item, key: Key(item), index)).ToList();
        keyed.Sort((p, q) => JinjaValues.Compare(p.key, q.key) is var c && c != 0 ? c : p.index.CompareTo(q.index));
        if (reverse) keyed.Reverse();
        return keyed.Select(k => k.item).ToList();
    }

    static object? ToInt(object? value, object? fallback) => value switch
    {
        long or bool => JinjaValues.ToLong(value),
        double d => (long)Math.Truncate(d),
        string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long i) => i,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double f) => (long)Math.Truncate(f),
        _ => fallback,
    };

    static object? ToFloat(object? value, object? fallback) => value switch
    {
        long or bool or double => JinjaValues.ToDouble(value),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double f) => f,
        _ => fallback,
    };

    static string Indent(string s, object? width, bool first, bool blank)
    {
        string pad = width is string w ? w : new string(' ', (int)JinjaValues.ToLong(width));
        string[] lines = s.Split('\n');
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            bool indentThis = (i > 0 || first) && (blank || lines[i].Trim().Length > 0);
            if (indentThis) sb.Append(pad);
            sb.Append(lines[i]);
        }
        return sb.ToString();
    }

    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousIsLetter = false;
        foreach (char c in s)
        {
            sb.Append(previousIsLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
}
