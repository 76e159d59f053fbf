using System.Text;

namespace SteerEngine.Generation.Jobs;

/// <summary>RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines. First row is the header.</summary>
public static class CsvReader
{
    /// <summary>Each data row as header → value, with its 1-based line number in the file.</summary>
    public static IEnumerable<(int Line, Dictionary<string, string> Row)> Read(string path)
    {
        using var reader = new StreamReader(path, Encoding.UTF8);
        string[]? header = null;
        foreach (var (startLine, fields) in Records(reader, path))
        {
            if (header is null)
            {
                header = fields.Select(f => f.Trim()).ToArray();
                if (header.Distinct().Count() != header.Length)
                    throw new InvalidDataException($"{path}: header has duplicate column names ({string.Join(", ", header)})");
                continue;
            }
            if (fields.Count == 1 && fields[0].Length == 0) continue; // blank line
            if (fields.Count != header.Length)
                throw new InvalidDataException($"{path}:{startLine}: row has {fields.Count} fields, the header has {header.Length}");
            var row = new Dictionary<string, string>(header.Length);
            for (int i = 0; i < header.Length; i++) row[header[i]] = fields[i];
            yield return (startLine, row);
        }
    }

    static IEnumerable<(int StartLine, List<string> Fields)> Records(StreamReader reader, string path)
    {
        var field = new StringBuilder();
        var fields = new List<string>();
        bool quoted = false, any = false;
        int line = 1, start = 1;
        int c;
        while ((c = reader.Read()) >= 0)
        {
            any = true;
            char ch = (char)c;
            if (quoted)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); field.Append('"'); }
                    else quoted = false;
                }
                else
                {
                    if (ch == '\n') line++;
                    field.Append(ch);
                }
                continue;
            }
            switch (ch)
            {
                case '"' when field.Length == 0: quoted = true; break;
                case ',': fields.Add(field.ToString()); field.Clear(); break;
                case '\r': break;
                case '\n':
                    fields.Add(field.ToString());
                    field.Clear();
                    yield return (start, fields);
                    fields = [];
                    any = false;
                    start = ++line;
                    break;
                default: field.Append(ch); break;
            }
        }
        if (quoted) throw new InvalidDataException($"{path}:{start}: quoted field is not closed before the end of the file");
        if (any)
        {
            fields.Add(field.ToString());
            yield return (start, fields);
        }
    }
}
