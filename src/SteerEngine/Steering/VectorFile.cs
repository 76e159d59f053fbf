using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using SteerEngine.Model;

namespace SteerEngine.Steering;

/// <summary>
/// Reads and writes steering vectors: safetensors (one tensor, [H] or [layers+1, H]) and NumPy
/// <c>.npy</c> (little-endian f4/f2/f8, C order). The format is chosen by extension.
/// </summary>
public static partial class VectorFile
{
    public static SteeringVector Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: vector file not found");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        (long[] shape, float[] data) = ext switch
        {
            ".safetensors" => ReadSafetensors(path),
            ".npy" => ReadNpy(path),
            _ => throw new ArgumentException($"{path}: unknown vector format '{ext}' (expected .safetensors or .npy)"),
        };
        for (int i = 0; i < data.Length; i++)
            if (!float.IsFinite(data[i]))
                throw new ArgumentException($"{path}: element {i} is {data[i]}; steering vectors must be finite");
        return shape.Length switch
        {
            1 => SteeringVector.Direction(data, path),
            2 => SteeringVector.PerLayerSet(Enumerable.Range(0, (int)shape[0])
                    .Select(r => data.AsSpan(r * (int)shape[1], (int)shape[1]).ToArray()).ToArray(), path),
            _ => throw new ArgumentException($"{path}: vector has shape [{string.Join(", ", shape)}], expected [hidden] or [layers+1, hidden]"),
        };
    }

    public static void Write(string path, SteeringVector vector)
    {
        long[] shape = vector.PerLayer ? [vector.Rows, vector.Hidden] : [vector.Hidden];
        float[] data = Enumerable.Range(0, vector.Rows).SelectMany(vector.Row).ToArray();
        string ext = Path.GetExtension(path).ToLowerInvariant();
        switch (ext)
        {
            case ".safetensors":
                var spec = new TensorSpec(vector.PerLayer ? "vectors" : "direction", DType.F32, shape);
                SafetensorsWriter.Write(path, [spec], (_, s) => s.Write(MemoryMarshal.AsBytes(data.AsSpan())));
                break;
            case ".npy":
                WriteNpy(path, shape, data);
                break;
            default:
                throw new ArgumentException($"{path}: unknown vector format '{ext}' (expected .safetensors or .npy)");
        }
    }

    static unsafe (long[], float[]) ReadSafetensors(string path)
    {
        using SafetensorsFile file = SafetensorsFile.Open(path);
        if (file.Tensors.Count != 1)
            throw new ArgumentException($"{path}: expected exactly one tensor, found {file.Tensors.Count} ({string.Join(", ", file.Tensors.Keys.Take(5))})");
        TensorInfo t = file.Tensors.Values.Single();
        var data = new float[t.ElementCount];
        byte* p = file.DataPointer(t);
        switch (t.DType)
        {
            case DType.F32: new ReadOnlySpan<float>(p, data.Length).CopyTo(data); break;
            case DType.BF16: BFloat16Convert.ToF32(new ReadOnlySpan<ushort>(p, data.Length), data); break;
            case DType.F16:
                var h = new ReadOnlySpan<Half>(p, data.Length);
                for (int i = 0; i < data.Length; i++) data[i] = (float)h[i];
                break;
        }
        return (t.Shape, data);
    }

    [GeneratedRegex(@"'descr':\s*'([<>|=]?)([fi])(\d)'.*'fortran_order':\s*(True|False).*'shape':\s*\(([\d,\s]*)\)")]
    private static partial Regex NpyHeader();

    static (long[], float[]) ReadNpy(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new ArgumentException($"{path}: not a .npy file (bad magic)");
        int major = bytes[6];
        int headerLen = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int dataStart = (major == 1 ? 10 : 12) + headerLen;
        if (dataStart > bytes.Length) throw new ArgumentException($"{path}: .npy header runs past the end of the file");
        string header = Encoding.Latin1.GetString(bytes, major == 1 ? 10 : 12, headerLen);
        Match m = NpyHeader().Match(header);
        if (!m.Success) throw new ArgumentException($"{path}: unsupported .npy header {header.Trim()}");
        if (m.Groups[1].Value == ">") throw new ArgumentException($"{path}: big-endian .npy is not supported");
        if (m.Groups[4].Value == "True") throw new ArgumentException($"{path}: Fortran-order .npy is not supported");
        string kind = m.Groups[2].Value + m.Groups[3].Value;
        long[] shape = m.Groups[5].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        int size = kind switch { "f4" => 4, "f2" => 2, "f8" => 8, _ => throw new ArgumentException($"{path}: .npy dtype '{kind}' is not supported (expected f2, f4 or f8)") };
        if (dataStart + count * size != bytes.Length)
            throw new ArgumentException($"{path}: .npy data is {bytes.Length - dataStart} bytes, shape [{string.Join(", ", shape)}] needs {count * size}");
        var data = new float[count];
        ReadOnlySpan<byte> raw = bytes.AsSpan(dataStart);
        for (int i = 0; i < count; i++)
            data[i] = size switch
            {
                4 => BitConverter.ToSingle(raw.Slice(i * 4, 4)),
                2 => (float)BitConverter.ToHalf(raw.Slice(i * 2, 2)),
                _ => (float)BitConverter.ToDouble(raw.Slice(i * 8, 8)),
            };
        return (shape, data);
    }

    static void WriteNpy(string path, long[] shape, float[] data)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        using var f = File.Create(path);
        f.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        f.Write(BitConverter.GetBytes((ushort)header.Length));
        f.Write(Encoding.ASCII.GetBytes(header));
        f.Write(MemoryMarshal.AsBytes(data.AsSpan()));
    }
}
