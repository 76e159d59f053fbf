using System.Numerics.Tensors;
using System.Text.Json;

namespace SteerEngine.Model;

/// <summary>
/// The weights of a Hugging Face model directory: either one model.safetensors, or shards
/// listed by model.safetensors.index.json. Only the tensors the index names are visible;
/// a shard may hold others, which are ignored as Hugging Face ignores them.
/// </summary>
public sealed unsafe class TensorStore : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    readonly Dictionary<string, SafetensorsFile> filesByPath;
    readonly Dictionary<string, TensorInfo> tensors;
    // The file that lists the tensors, named when one is missing.
    readonly string listingPath;

    TensorStore(string listingPath, IEnumerable<SafetensorsFile> files, Dictionary<string, TensorInfo> tensors)
    {
        this.listingPath = listingPath;
        filesByPath = files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        this.tensors = tensors;
    }

    public IReadOnlyCollection<string> Names => tensors.Keys;

    public bool Contains(string name) => tensors.ContainsKey(name);

    /// <summary>
    /// Opens model.safetensors if present (as Hugging Face prefers it), else the index and its shards.
    /// </summary>
    public static TensorStore Open(string modelDir)
    {
        string single = Path.Combine(modelDir, SingleFileName);
        if (File.Exists(single))
        {
            var file = SafetensorsFile.Open(single);
            return new TensorStore(single, [file], new Dictionary<string, TensorInfo>(file.Tensors, StringComparer.Ordinal));
        }
        string index = Path.Combine(modelDir, IndexFileName);
        if (File.Exists(index))
            return OpenSharded(modelDir, index);
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"{modelDir}: model directory does not exist");
        throw new ModelFormatException($"{modelDir}: neither {SingleFileName} nor {IndexFileName} found");
    }

    static TensorStore OpenSharded(string modelDir, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            foreach (var (name, shardName) in weightMap)
            {
                if (!shards.TryGetValue(shardName, out var shard))
                {
                    string shardPath = Path.Combine(modelDir, shardName);
                    if (!File.Exists(shardPath))
                        throw new ModelFormatException($"{indexPath}: weight_map puts tensor '{SafetensorsHeader.Shown(name)}' in {shardName}, which does not exist");
                    shard = SafetensorsFile.Open(shardPath);
                    shards.Add(shardName, shard);
                }
                if (!shard.Tensors.TryGetValue(name, out var info))
                    throw new ModelFormatException($"{shard.Path}: tensor '{SafetensorsHeader.Shown(name)}' is listed in {IndexFileName} but not in this shard");
                tensors.Add(name, info);
            }
            return new TensorStore(indexPath, shards.Values, tensors);
        }
        catch
        {
            foreach (var shard in shards.Values)
                shard.Dispose();
            throw;
        }
    }

    /// <summary>The index's "weight_map": tensor name to shard file name, in file order.</summary>
    static List<(string Tensor, string Shard)> ReadWeightMap(string indexPath)
    {
        using var document = StrictJson.Parse(indexPath, File.ReadAllBytes(indexPath), "index");
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException($"{indexPath}: index is not a JSON object (got {root.ValueKind})");
        if (!root.TryGetProperty("weight_map", out var weightMap) || weightMap.ValueKind != JsonValueKind.Object)
            throw new ModelFormatException($"{indexPath}: missing \"weight_map\" object of tensor name to shard file");
        var entries = new List<(string, string)>();
        foreach (var entry in weightMap.EnumerateObject())
        {
            string? shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
            // A shard is a file beside the index; anything with a directory part could reach outside the model.
            if (string.IsNullOrEmpty(shard) || Path.GetFileName(shard) != shard || shard is "." or "..")
                throw new ModelFormatException(
                    $"{indexPath}: weight_map entry for '{SafetensorsHeader.Shown(entry.Name)}' must be a shard file name, got {SafetensorsHeader.Shown(entry.Value.GetRawText())}");
            entries.Add((entry.Name, shard));
        }
        return entries;
    }

    /// <summary>
    /// The tensor <paramref name="name"/>, checked to have exactly <paramref name="shape"/>
    /// (an empty shape means a scalar).
    /// </summary>
    public TensorInfo Require(string name, params long[] shape)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new ModelFormatException($"{listingPath}: tensor '{name}' not found (expected shape {Shapes.Format(shape)})");
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw new ModelFormatException($"{t.File}: tensor '{name}' has shape {Shapes.Format(t.Shape)}, expected {Shapes.Format(shape)}");
        return t;
    }

    public byte* DataPointer(TensorInfo t)
    {
        if (!filesByPath.TryGetValue(t.File, out var file))
            throw new ArgumentException($"tensor '{t.Name}' comes from {t.File}, which is not part of this model", nameof(t));
        return file.DataPointer(t);
    }

    /// <summary>
    /// Elements [elementOffset, elementOffset + destination.Length) of <paramref name="t"/> as f32;
    /// bf16 and f16 widen exactly.
    /// </summary>
    public void ReadF32(TensorInfo t, long elementOffset, Span<float> destination)
    {
        if (elementOffset < 0 || elementOffset > t.ElementCount - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(elementOffset),
                $"elements [{elementOffset}, {elementOffset + destination.Length}) are outside tensor '{t.Name}' of {t.ElementCount}");
        byte* source = DataPointer(t) + elementOffset * DTypes.Size(t.DType);
        int n = destination.Length;
        // Safetensors does not align tensor data, so these spans may be unaligned; every path below loads unaligned.
        switch (t.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>(source, n).CopyTo(destination);
                break;
            case DType.BF16:
                BFloat16Convert.ToF32(new ReadOnlySpan<ushort>(source, n), destination);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source, n), destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(t), t.DType, null);
        }
    }

    /// <summary>The whole of <paramref name="t"/> as f32; for tensors small enough to copy (norms, biases, vectors).</summary>
    public float[] ReadF32(TensorInfo t)
    {
        if (t.ElementCount > Array.MaxLength)
            throw new ArgumentException($"tensor '{t.Name}' has {t.ElementCount} elements, too many for one array", nameof(t));
        var result = new float[t.ElementCount];
        ReadF32(t, 0, result);
        return result;
    }

    public void Dispose()
    {
        foreach (var file in filesByPath.Values)
            file.Dispose();
    }
}
