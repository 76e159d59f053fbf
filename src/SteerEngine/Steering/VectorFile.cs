using SteerEngine.Model;
using SteerEngine.Steering.Formats;

namespace SteerEngine.Steering;

/// <summary>
/// Reads and writes steering vectors, the format chosen by extension:
/// <list type="bullet">
/// <item><c>.pt</c>, <c>.pth</c>: <c>torch.save</c> of one tensor [H] or [layers+1, H] (f32, bf16, f16, f64) or a dict holding one.</item>
/// <item><c>.safetensors</c>: one tensor [H] or [layers+1, H], or per-layer tensors named <c>direction.N</c>.</item>
/// <item><c>.gguf</c>: a repeng / llama.cpp control vector, tensors <c>direction.N</c>; always read as a per-layer set.</item>
/// <item><c>.npy</c>: one array [H] or [layers+1, H] (f4, f2, f8).</item>
/// <item><c>FILE.safetensors#TENSOR[ROW]</c>, optionally <c>*SCALE</c>: one row of an SAE decoder (<see cref="SaeFeatureVector"/>).</item>
/// </list>
/// Per-layer sets use the HF hidden-states numbering (DESIGN.md §3): row L + 1 steers block L.
/// Writing stores f32. Errors: a file that is malformed, truncated or holds something other than a finite
/// steering vector throws <see cref="InvalidDataException"/>; a bad argument (unknown extension, a layer the
/// format cannot take) throws <see cref="ArgumentException"/>; a missing file <see cref="FileNotFoundException"/>.
/// Every message starts with the path.
/// </summary>
public static class VectorFile
{
    enum Format { Torch, Safetensors, Gguf, Npy }

    /// <summary>
    /// The name records give a vector read from <paramref name="path"/>: the file name without its extension, and
    /// for an SAE decoder row the row too (<c>sae#W_dec[1234]</c>, with its <c>*SCALE</c>), so two features differ.
    /// </summary>
    public static string NameOf(string path)
    {
        if (!SaeFeatureVector.IsSpec(path)) return Path.GetFileNameWithoutExtension(path);
        int hash = path.IndexOf('#');
        return Path.GetFileNameWithoutExtension(path[..hash]) + path[hash..];
    }

    public static SteeringVector Read(string path)
    {
        if (SaeFeatureVector.IsSpec(path))
        {
            SteeringVector feature = SaeFeatureVector.Read(path);
            CheckFinite(path, feature);
            return feature;
        }
        Format format = FormatOf(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: vector file not found", path);
        SteeringVector vector = format switch
        {
            Format.Torch => TorchPickleFile.Read(path).ToSteeringVector(path),
            Format.Safetensors => SafetensorsVectorFile.Read(path),
            Format.Gguf => GgufControlVectorFile.Read(path),
            _ => NpyFile.Read(path).ToSteeringVector(path),
        };
        CheckFinite(path, vector);
        return vector;
    }

    /// <param name="layer">
    /// For a direction written to .gguf: the decoder block (0-based, at least 1 since llama.cpp rejects
    /// direction.0) it steers, which that format records and needs. The other formats record no layer and
    /// ignore it. Must be null for a per-layer set, whose rows carry their layers.
    /// </param>
    public static void Write(string path, SteeringVector vector, int? layer = null)
    {
        Format format = FormatOf(path);
        if (vector.PerLayer && layer is not null)
            throw new ArgumentException($"{path}: a per-layer set carries its own layers; write it without a layer");
        switch (format)
        {
            case Format.Torch: TorchPickleFile.Write(path, VectorTensor.Of(vector)); break;
            case Format.Safetensors: SafetensorsVectorFile.Write(path, VectorTensor.Of(vector)); break;
            case Format.Gguf: GgufControlVectorFile.Write(path, vector, layer); break;
            default: NpyFile.Write(path, VectorTensor.Of(vector)); break;
        }
    }

    /// <summary>The file extensions Read and Write take (the command-line help lists them all).</summary>
    public static readonly string[] Extensions = [".pt", ".pth", ".safetensors", ".gguf", ".npy"];

    static Format FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".pt" or ".pth" => Format.Torch,
        ".safetensors" => Format.Safetensors,
        ".gguf" => Format.Gguf,
        ".npy" => Format.Npy,
        var ext => throw new ArgumentException($"{path}: unknown vector format '{ext}' (expected {string.Join(", ", Extensions)})"),
    };

    static void CheckFinite(string path, SteeringVector vector)
    {
        for (int r = 0; r < vector.Rows; r++)
        {
            float[] row = vector.Row(r);
            for (int i = 0; i < row.Length; i++)
                if (!float.IsFinite(row[i]))
                    throw new InvalidDataException(vector.PerLayer
                        ? $"{path}: row {r} element {i} is {row[i]}; steering vectors must be finite"
                        : $"{path}: element {i} is {row[i]}; steering vectors must be finite");
        }
    }

    /// <summary>The whole of a file expected to be small; a huge one (a model, say) is an error naming it.</summary>
    internal static byte[] ReadAllBytes(string path)
    {
        long length = new FileInfo(path).Length;
        if (length > Array.MaxLength)
            throw new InvalidDataException($"{path}: {length} bytes is far too large for a steering vector file");
        return File.ReadAllBytes(path);
    }

    /// <summary>Writes <paramref name="path"/> beside itself and renames it into place once complete.</summary>
    internal static void WriteAtomically(string path, Action<Stream> write) => SafetensorsWriter.WriteAtomically(path, f => write(f));
}
