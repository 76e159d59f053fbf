using System.Globalization;
using System.Text;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// The <c>tojson</c> filter as transformers defines it for chat templates: Python's
/// <c>json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)</c>, so
/// separators are ", " and ": " (or "," and ": " when indenting) and non-ASCII text stays as is.
/// </summary>
internal static class JinjaJson
{
    public static string Serialize(object? value, int? indent, bool ensureAscii, bool sortKeys, (string Item, string Key)? separators)
    {
        var (item, key) = separators ?? (indent is null ? (", ", ": ") : (",", ": "));
        var sb = new StringBuilder();
        Write(sb, value, indent, ensureAscii, sortKeys, item, key, depth: 0);
        return sb.ToString();
    }

    static void Write(StringBuilder sb, object? value, int? indent, bool ascii, bool sortKeys, string item, string key, int depth)
    {
        switch (value)
        {
            case null or Undefined:
                sb.Append("null");
                break;
            case bool b:
                sb.Append(b ? "true" : "false");
                break;
            case long i:
                sb.Append(i.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : JinjaValues.FormatFloat(d));
                break;
            case string s:
                WriteString(sb, s, ascii);
                break;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list.Count, indent, item, depth, k => Write(sb, list[k], indent, ascii, sortKeys, item, key, depth + 1));
                break;
            case JinjaDict or JinjaNamespace:
                var dict = value as JinjaDict ?? ((JinjaNamespace)value).Attributes;
                var entries = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList() : dict.ToList();
                WriteContainer(sb, '{', '}', entries.Count, indent, item, depth, k =>
                {
                    WriteString(sb, entries[k].Key, ascii);
                    sb.Append(key);
                    Write(sb, entries[k].Value, indent, ascii, sortKeys, item, key, depth + 1);
                });
                break;
            default:
                throw new JinjaRuntimeException($"{JinjaValues.TypeName(value)} is not JSON serializable");
        }
    }

    static void WriteContainer(StringBuilder sb, char open, char close, int count, int? indent, string item, int depth, Action<int> writeEntry)
    {
        sb.Append(open);
        if (count == 0)
        {
            sb.Append(close);
            return;
        }
        for (int k = 0; k < count; k++)
        {
            if (k > 0) sb.Append(item);
            if (indent is int n) sb.Append('\n').Append(' ', n * (depth + 1));
            writeEntry(k);
        }
        if (indent is int m) sb.Append('\n').Append(' ', m * depth);
        sb.Append(close);
    }

    static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7E))
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
