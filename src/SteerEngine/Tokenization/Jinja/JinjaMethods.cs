using System.Text;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// Attribute and item access (<c>x.name</c>, <c>x[key]</c>, <c>x[a:b:c]</c>) and the Python methods
/// templates call on strings and dicts (<c>content.startswith(...)</c>, <c>d.items()</c>).
/// As in Jinja2, <c>x.name</c> prefers a method and falls back to the dict item.
/// </summary>
internal static class JinjaMethods
{
    public static object? GetAttribute(object? target, string name) => target switch
    {
        Undefined u => throw new JinjaRuntimeException($"'{u.Name ?? "value"}' is undefined"),
        JinjaDict dict => (object?)DictMethod(dict, name) ?? (dict.TryGetValue(name, out object? v) ? v : new Undefined(name)),
        JinjaNamespace ns => ns.Attributes.TryGetValue(name, out object? v) ? v : new Undefined(name),
        string s => (object?)StringMethod(s, name) ?? new Undefined(name),
        _ => new Undefined(name),
    };

    public static object? GetItem(object? target, object? key)
    {
        switch (target, key)
        {
            case (Undefined u, _):
                throw new JinjaRuntimeException($"'{u.Name ?? "value"}' is undefined");
            case (JinjaDict dict, string k):
                return dict.TryGetValue(k, out object? v) ? v : new Undefined(k);
            case (JinjaNamespace ns, string k):
                return ns.Attributes.TryGetValue(k, out object? a) ? a : new Undefined(k);
            case (List<object?> list, long or bool):
                long i = JinjaValues.ToLong(key);
                if (i < 0) i += list.Count;
                return i >= 0 && i < list.Count ? list[(int)i] : Undefined.Anonymous;
            case (string s, long or bool):
                string[] chars = CodePoints(s);
                long j = JinjaValues.ToLong(key);
                if (j < 0) j += chars.Length;
                return j >= 0 && j < chars.Length ? chars[j] : Undefined.Anonymous;
            case (_, string name):
                return GetAttribute(target, name);
            default:
                return Undefined.Anonymous;
        }
    }

    /// <summary>Python's <c>x[start:stop:step]</c> on a list or string.</summary>
    public static object? Slice(object? target, long? start, long? stop, long? step)
    {
        long by = step ?? 1;
        if (by == 0)
            throw new JinjaRuntimeException("slice step cannot be zero");
        switch (target)
        {
            case List<object?> list:
                return SliceIndices(list.Count, start, stop, by).Select(i => list[i]).ToList();
            case string s:
                string[] chars = CodePoints(s);
                return string.Concat(SliceIndices(chars.Length, start, stop, by).Select(i => chars[i]));
            case Undefined u:
                throw new JinjaRuntimeException($"'{u.Name ?? "value"}' is undefined");
            default:
                throw new JinjaRuntimeException($"{JinjaValues.TypeName(target)} cannot be sliced");
        }
    }

    static IEnumerable<int> SliceIndices(int length, long? start, long? stop, long step)
    {
        long Adjust(long? index, long whenMissing)
        {
            if (index is not long i) return whenMissing;
            if (i < 0) return Math.Max(i + length, step < 0 ? -1 : 0);
            return Math.Min(i, step < 0 ? length - 1 : length);
        }
        long from = Adjust(start, step < 0 ? length - 1 : 0);
        long to = Adjust(stop, step < 0 ? -1 : length);
        for (long i = from; step > 0 ? i < to : i > to; i += step)
            yield return (int)i;
    }

    /// <summary>The string as Python sees it: one element per code point.</summary>
    public static string[] CodePoints(string s) => s.EnumerateRunes().Select(r => r.ToString()).ToArray();

    static JinjaCallable? DictMethod(JinjaDict dict, string name) => name switch
    {
        "items" => new(name, (_, _) => dict.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()),
        "keys" => new(name, (_, _) => dict.Keys.Select(k => (object?)k).ToList()),
        "values" => new(name, (_, _) => dict.Values.ToList()),
        "get" => new(name, (args, _) => args.Count > 0 && args[0] is string k && dict.TryGetValue(k, out object? v) ? v : args.Count > 1 ? args[1] : null),
        _ => null,
    };

    static JinjaCallable? StringMethod(string s, string name) => name switch
    {
        "startswith" => new(name, (args, _) => Affix(s, Arg(args, 0, name), (x, p) => x.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => new(name, (args, _) => Affix(s, Arg(args, 0, name), (x, p) => x.EndsWith(p, StringComparison.Ordinal))),
        "strip" => new(name, (args, _) => Strip(s, OptionalString(args, 0), start: true, end: true)),
        "lstrip" => new(name, (args, _) => Strip(s, OptionalString(args, 0), start: true, end: false)),
        "rstrip" => new(name, (args, _) => Strip(s, OptionalString(args, 0), start: false, end: true)),
        "split" => new(name, (args, kwargs) => Split(s, OptionalString(args, 0) ?? kwargs.GetValueOrDefault("sep") as string,
            args.Count > 1 ? JinjaValues.ToLong(args[1]) : kwargs.TryGetValue("maxsplit", out object? m) ? JinjaValues.ToLong(m) : -1)),
        "replace" => new(name, (args, _) => Replace(s, StringArg(args, 0, name), StringArg(args, 1, name), args.Count > 2 ? JinjaValues.ToLong(args[2]) : -1)),
        "upper" => new(name, (_, _) => s.ToUpperInvariant()),
        "lower" => new(name, (_, _) => s.ToLowerInvariant()),
        "title" => new(name, (_, _) => JinjaFilters.Title(s)),
        "capitalize" => new(name, (_, _) => JinjaFilters.Capitalize(s)),
        "find" => new(name, (args, _) => (long)s.IndexOf(StringArg(args, 0, name), StringComparison.Ordinal)),
        "count" => new(name, (args, _) => (long)CountOccurrences(s, StringArg(args, 0, name))),
        "join" => new(name, (args, _) => string.Join(s, JinjaValues.Iterate(Arg(args, 0, name)).Select(JinjaValues.ToStr))),
        "isdigit" => new(name, (_, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => new(name, (_, _) => s.Length > 0 && s.All(char.IsLetter)),
        "isspace" => new(name, (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "removeprefix" => new(name, (args, _) => s.StartsWith(StringArg(args, 0, name), StringComparison.Ordinal) ? s[StringArg(args, 0, name).Length..] : s),
        "removesuffix" => new(name, (args, _) => s.EndsWith(StringArg(args, 0, name), StringComparison.Ordinal) ? s[..^StringArg(args, 0, name).Length] : s),
        _ => null,
    };

    static object? Arg(List<object?> args, int i, string method) =>
        i < args.Count ? args[i] : throw new JinjaRuntimeException($"{method}() is missing an argument");

    static string StringArg(List<object?> args, int i, string method) =>
        Arg(args, i, method) as string ?? throw new JinjaRuntimeException($"{method}() needs a string argument");

    static string? OptionalString(List<object?> args, int i) => i < args.Count ? args[i] as string : null;

    // startswith/endswith take one prefix or a tuple of them.
    static bool Affix(string s, object? affix, Func<string, string, bool> test) => affix switch
    {
        string p => test(s, p),
        List<object?> options => options.Any(o => o is string p && test(s, p)),
        _ => throw new JinjaRuntimeException("startswith/endswith need a string or a tuple of strings"),
    };

    public static string Strip(string s, string? chars, bool start, bool end)
    {
        if (chars is null)
            return start && end ? s.Trim() : start ? s.TrimStart() : s.TrimEnd();
        char[] set = chars.ToCharArray();
        return start && end ? s.Trim(set) : start ? s.TrimStart(set) : s.TrimEnd(set);
    }

    static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            // Python's split() without a separator: runs of whitespace, no empty strings.
            string rest = s.TrimStart();
            while (rest.Length > 0)
            {
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(rest);
                    break;
                }
                int end = 0;
                while (end < rest.Length && !char.IsWhiteSpace(rest[end])) end++;
                parts.Add(rest[..end]);
                rest = rest[end..].TrimStart();
            }
            return parts;
        }
        if (separator.Length == 0)
            throw new JinjaRuntimeException("split() separator cannot be empty");
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Add(s[from..at]);
            from = at + separator.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }

    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
            return old.Length == 0 ? ReplaceEmpty(s, replacement, long.MaxValue) : s.Replace(old, replacement, StringComparison.Ordinal);
        if (old.Length == 0)
            return ReplaceEmpty(s, replacement, count);
        var sb = new StringBuilder();
        int from = 0;
        for (long n = 0; n < count; n++)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return sb.Append(s, from, s.Length - from).ToString();
    }

    // Python inserts the replacement between characters (and at both ends) when the old text is empty.
    static string ReplaceEmpty(string s, string replacement, long count)
    {
        var sb = new StringBuilder();
        string[] chars = CodePoints(s);
        long n = 0;
        for (int i = 0; i <= chars.Length; i++)
        {
            if (n++ < count) sb.Append(replacement);
            if (i < chars.Length) sb.Append(chars[i]);
        }
        return sb.ToString();
    }

    static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0) return CodePoints(s).Length + 1;
        int count = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal))
            count++;
        return count;
    }
}
