using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace SteerEngine.Model;

/// <summary>
/// Parses and validates the JSON header of a safetensors file, so that every tensor it
/// returns lies inside the data buffer and no two tensors share a byte.
/// </summary>
internal static class SafetensorsHeader
{
    /// <summary>The reference implementation's limit; it bounds what a corrupt length field can make us read.</summary>
    public const long MaxLength = 100_000_000;

    public const string MetadataKey = "__metadata__";

    /// <param name="path">The file, named in every error.</param>
    /// <param name="json">The header bytes.</param>
    /// <param name="dataStart">Absolute file offset of the data buffer (8 + header length).</param>
    /// <param name="dataLength">Bytes in the data buffer (file length - dataStart).</param>
    public static (Dictionary<string, TensorInfo> Tensors, Dictionary<string, string> Metadata) Parse(
        string path, byte[] json, long dataStart, long dataLength)
    {
        if (!Utf8.IsValid(json))
            throw Error(path, "header is not valid UTF-8");
        using var document = StrictJson.Parse(path, json, "header");
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw Error(path, $"header is not a JSON object (got {root.ValueKind})");

        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var ranges = new List<(long Begin, long End, string Name)>();
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name == MetadataKey)
            {
                ParseMetadata(path, property.Value, metadata);
                continue;
            }
            var (info, begin, end) = ParseTensor(path, property.Name, property.Value, dataStart, dataLength);
            tensors.Add(info.Name, info);
            ranges.Add((begin, end, info.Name));
        }
        CheckNoOverlap(path, ranges);
        return (tensors, metadata);
    }

    static void ParseMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error(path, $"\"{MetadataKey}\" must be an object of strings, got {value.ValueKind}");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Error(path, $"\"{MetadataKey}\" value for '{Shown(entry.Name)}' must be a string, got {entry.Value.ValueKind}");
            metadata.Add(entry.Name, entry.Value.GetString()!);
        }
    }

    static (TensorInfo Info, long Begin, long End) ParseTensor(
        string path, string name, JsonElement entry, long dataStart, long dataLength)
    {
        string where = $"tensor '{Shown(name)}'";
        if (entry.ValueKind != JsonValueKind.Object)
            throw Error(path, $"{where}: expected an object with dtype, shape and data_offsets, got {entry.ValueKind}");

        var dtypeElement = Field(path, where, entry, "dtype");
        if (dtypeElement.ValueKind != JsonValueKind.String)
            throw Error(path, $"{where}: \"dtype\" must be a string, got {Raw(dtypeElement)}");
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParse(dtypeName, out var dtype))
        {
            string kind = DTypes.IsUnsupportedSafetensorsName(dtypeName) ? "unsupported" : "unknown";
            throw Error(path, $"{where}: {kind} dtype '{Shown(dtypeName)}' (supported: {DTypes.SupportedNames})");
        }

        long[] shape = NonNegativeIntegers(path, where, Field(path, where, entry, "shape"), "shape", expectedCount: null);
        long[] offsets = NonNegativeIntegers(path, where, Field(path, where, entry, "data_offsets"), "data_offsets", expectedCount: 2);
        long begin = offsets[0], end = offsets[1];

        long byteLength;
        try
        {
            byteLength = checked(Shapes.ElementCount(shape) * DTypes.Size(dtype));
        }
        catch (OverflowException)
        {
            throw Error(path, $"{where}: shape {Shapes.Format(shape)} has more bytes than a file can hold");
        }
        if (end < begin)
            throw Error(path, $"{where}: data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
            throw Error(path, $"{where}: data_offsets [{begin}, {end}] run past end of data buffer ({dataLength} bytes)");
        if (end - begin != byteLength)
            throw Error(path, $"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes, but shape {Shapes.Format(shape)} of {DTypes.Name(dtype)} needs {byteLength}");

        return (new TensorInfo(name, dtype, shape, path, dataStart + begin, byteLength), begin, end);
    }

    static JsonElement Field(string path, string where, JsonElement entry, string field)
    {
        if (!entry.TryGetProperty(field, out var value))
            throw Error(path, $"{where}: missing \"{field}\"");
        return value;
    }

    static long[] NonNegativeIntegers(string path, string where, JsonElement array, string field, int? expectedCount)
    {
        string expected = expectedCount is int n ? $"an array of {n} non-negative integers" : "an array of non-negative integers";
        if (array.ValueKind != JsonValueKind.Array || (expectedCount is int count && array.GetArrayLength() != count))
            throw Error(path, $"{where}: \"{field}\" must be {expected}, got {Raw(array)}");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw Error(path, $"{where}: \"{field}\" must be {expected}, got {Raw(array)}");
            values[i++] = v;
        }
        return values;
    }

    // The format asks for the data buffer to be covered without gaps; we tolerate gaps,
    // which cost nothing to read, but not overlap, which would alias two tensors. Empty
    // tensors hold no bytes and so overlap nothing. Sorted by begin, any overlap shows up
    // between neighbours: if A overlaps a later C, the range B between them starts inside A too.
    static void CheckNoOverlap(string path, List<(long Begin, long End, string Name)> ranges)
    {
        var nonEmpty = ranges.Where(r => r.End > r.Begin).OrderBy(r => r.Begin).ThenBy(r => r.End).ToList();
        for (int i = 1; i < nonEmpty.Count; i++)
        {
            var previous = nonEmpty[i - 1];
            var current = nonEmpty[i];
            if (current.Begin < previous.End)
                throw Error(path,
                    $"tensors '{Shown(previous.Name)}' [{previous.Begin}, {previous.End}] and '{Shown(current.Name)}' [{current.Begin}, {current.End}] overlap in the data buffer");
        }
    }

    static ModelFormatException Error(string path, string problem) => new($"{path}: {problem}");

    const int ShownLimit = 80;

    /// <summary>A name or value as it can appear in a one-line message: control characters replaced, long text cut.</summary>
    internal static string Shown(string s)
    {
        var b = new StringBuilder(Math.Min(s.Length, ShownLimit + 3));
        foreach (char c in s.Length > ShownLimit ? s[..ShownLimit] : s)
            b.Append(char.IsControl(c) ? '?' : c);
        if (s.Length > ShownLimit)
            b.Append("...");
        return b.ToString();
    }

    static string Raw(JsonElement e) => Shown(e.GetRawText());
}
