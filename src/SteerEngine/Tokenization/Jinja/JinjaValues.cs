using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// Template values are plain .NET objects: null (Python None), <see cref="Undefined"/>, bool, long,
/// double, string, <see cref="List{T}"/> of values (lists and tuples), <see cref="JinjaDict"/>,
/// <see cref="JinjaNamespace"/> and <see cref="JinjaCallable"/>. This class gives them Python's
/// meaning: truth, str(), equality, ordering, iteration.
/// </summary>
internal static class JinjaValues
{
    public static bool IsTrue(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long i => i != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        JinjaDict dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>Python's str(): what <c>{{ value }}</c> prints.</summary>
    public static string ToStr(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    /// <summary>Python's repr(), used for values nested inside printed lists and dicts.</summary>
    public static string Repr(object? value) => value switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long i => i.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        string s => ReprString(s),
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        JinjaDict dict => "{" + string.Join(", ", dict.Select(kv => ReprString(kv.Key) + ": " + Repr(kv.Value))) + "}",
        JinjaNamespace => "<Namespace>",
        JinjaCallable c => $"<function {c.Name}>",
        _ => value.ToString() ?? "",
    };

    static string ReprString(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2).Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append(@"\\"); break;
                case '\n': sb.Append(@"\n"); break;
                case '\r': sb.Append(@"\r"); break;
                case '\t': sb.Append(@"\t"); break;
                default:
                    if (c == quote) sb.Append('\\');
                    sb.Append(c);
                    break;
            }
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>Python's repr(float): shortest round-trip digits, ".0" on integral values, exponent outside [1e-4, 1e16).</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";

        string s = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int e = 0;
        int ei = s.IndexOf('E');
        if (ei >= 0)
        {
            e = int.Parse(s[(ei + 1)..], CultureInfo.InvariantCulture);
            s = s[..ei];
        }
        int point = s.IndexOf('.');
        string intPart = point < 0 ? s : s[..point];
        string all = point < 0 ? s : intPart + s[(point + 1)..];
        int firstNonZero = all.Length - all.TrimStart('0').Length;
        string digits = all[firstNonZero..].TrimEnd('0');
        int exponent = intPart.Length - 1 - firstNonZero + e; // decimal exponent of the first significant digit

        string sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16)
        {
            string text;
            if (exponent < 0)
                text = "0." + new string('0', -exponent - 1) + digits;
            else if (digits.Length <= exponent + 1)
                text = digits + new string('0', exponent + 1 - digits.Length) + ".0";
            else
                text = digits[..(exponent + 1)] + "." + digits[(exponent + 1)..];
            return sign + text;
        }
        string body = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
        return $"{sign}{body}e{(exponent < 0 ? "-" : "+")}{Math.Abs(exponent):00}";
    }

    public static bool AreEqual(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
            return ToDouble(a) == ToDouble(b);
        return (a, b) switch
        {
            (null, null) => true,
            (Undefined, Undefined) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => AreEqual(p.First, p.Second)),
            (JinjaDict x, JinjaDict y) => x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out object? v) && AreEqual(kv.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>Python ordering for &lt; &gt; &lt;= &gt;=; numbers with numbers, strings with strings, lists element-wise.</summary>
    public static int Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b))
            return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string x && b is string y)
            return Math.Sign(string.CompareOrdinal(x, y));
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
                if (!AreEqual(la[i], lb[i]))
                    return Compare(la[i], lb[i]);
            return la.Count.CompareTo(lb.Count);
        }
        throw new JinjaRuntimeException($"cannot compare {TypeName(a)} with {TypeName(b)}");
    }

    /// <summary>Python numbers: int, float and bool (True == 1).</summary>
    public static bool IsNumber(object? v) => v is long or double or bool;

    public static double ToDouble(object? v) => v switch
    {
        long i => i,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaRuntimeException($"expected a number, got {TypeName(v)}"),
    };

    public static long ToLong(object? v) => v switch
    {
        long i => i,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new JinjaRuntimeException($"expected an integer, got {TypeName(v)}"),
    };

    public static string TypeName(object? v) => v switch
    {
        null => "None",
        Undefined u => u.Name is null ? "undefined" : $"undefined '{u.Name}'",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        JinjaDict => "dict",
        JinjaNamespace => "namespace",
        JinjaCallable => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python iteration: list items, dict keys, string characters; undefined iterates as empty.</summary>
    public static List<object?> Iterate(object? value) => value switch
    {
        List<object?> list => list,
        JinjaDict dict => dict.Keys.Select(k => (object?)k).ToList(),
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()).ToList(),
        Undefined => [],
        _ => throw new JinjaRuntimeException($"{TypeName(value)} is not iterable"),
    };

    public static long Length(object? value) => value switch
    {
        string s => s.EnumerateRunes().Count(),
        List<object?> list => list.Count,
        JinjaDict dict => dict.Count,
        Undefined => 0,
        _ => throw new JinjaRuntimeException($"{TypeName(value)} has no length"),
    };

    /// <summary>
    /// Turns a value handed in by C# code (strings, numbers, dictionaries, sequences, JSON documents)
    /// into a template value.
    /// </summary>
    public static object? FromDotNet(object? value) => value switch
    {
        null => null,
        Undefined or string or bool or long or double or JinjaDict or JinjaNamespace or JinjaCallable => value,
        List<object?> list => list,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        ChatMessage m => new JinjaDict { ["role"] = m.Role, ["content"] = m.Content },
        JsonElement e => FromJson(e),
        JsonNode n => FromJson(JsonSerializer.SerializeToElement(n)),
        IDictionary dict => FromDictionary(dict),
        IEnumerable sequence => sequence.Cast<object?>().Select(FromDotNet).ToList(),
        _ => throw new ArgumentException($"a {value.GetType().Name} cannot be passed to a chat template"),
    };

    static JinjaDict FromDictionary(IDictionary dict)
    {
        var result = new JinjaDict();
        foreach (DictionaryEntry entry in dict)
            result[entry.Key as string ?? throw new ArgumentException("chat template dictionaries need string keys")] = FromDotNet(entry.Value);
        return result;
    }

    static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out long i) ? i : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        _ => FromJsonObject(e),
    };

    static JinjaDict FromJsonObject(JsonElement e)
    {
        var result = new JinjaDict();
        foreach (JsonProperty p in e.EnumerateObject())
            result[p.Name] = FromJson(p.Value);
        return result;
    }
}

/// <summary>A Python dict with string keys, keeping insertion order as Python does.</summary>
internal sealed class JinjaDict : OrderedDictionary<string, object?>
{
    public JinjaDict() : base(StringComparer.Ordinal) { }
}

/// <summary>
/// Jinja's undefined: a missing variable, attribute or item. It prints as "", is false, iterates
/// as empty, and fails when used as an object.
/// </summary>
internal sealed class Undefined(string? name)
{
    public static readonly Undefined Anonymous = new(null);
    public string? Name { get; } = name;
}

/// <summary>The object <c>namespace(...)</c> returns: the one thing a template may assign attributes to.</summary>
internal sealed class JinjaNamespace
{
    public JinjaDict Attributes { get; } = new();
}

/// <summary>A function a template can call: a global, a bound method such as <c>str.split</c>, or a macro.</summary>
internal sealed class JinjaCallable(string name, Func<List<object?>, JinjaDict, object?> invoke)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, JinjaDict kwargs) => invoke(args, kwargs);
}

/// <summary>A template failed while rendering; <see cref="Position"/> is -1 until the interpreter adds where.</summary>
internal sealed class JinjaRuntimeException(string message, int position = -1) : Exception(message)
{
    public int Position { get; } = position;
    public JinjaRuntimeException At(int position) => new(Message, position);
}

/// <summary>The template called raise_exception(message).</summary>
internal sealed class JinjaRaisedException(string message) : Exception(message);
