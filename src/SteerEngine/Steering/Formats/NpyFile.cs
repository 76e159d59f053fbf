using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace SteerEngine.Steering.Formats;

/// <summary>NumPy <c>.npy</c> (format 1.0–3.0): read little-endian f2/f4/f8 in C order; write f4.</summary>
internal static partial class NpyFile
{
    [GeneratedRegex(@"'descr':\s*'([<>|=]?)([fi])(\d)'.*'fortran_order':\s*(True|False).*'shape':\s*\(([\d,\s]*)\)")]
    private static partial Regex Header();

    public static VectorTensor Read(string path)
    {
        byte[] bytes = VectorFile.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY")
            throw new InvalidDataException($"{path}: not a .npy file (bad magic)");
        int major = bytes[6];
        int lengthField = major == 1 ? 2 : 4;
        if (bytes.Length < 8 + lengthField)
            throw new InvalidDataException($"{path}: .npy header runs past the end of the file");
        long headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToUInt32(bytes, 8);
        long dataStart = 8 + lengthField + headerLength;
        if (dataStart > bytes.Length)
            throw new InvalidDataException($"{path}: .npy header runs past the end of the file");
        string header = Encoding.Latin1.GetString(bytes, 8 + lengthField, (int)headerLength);
        Match m = Header().Match(header);
        if (!m.Success) throw new InvalidDataException($"{path}: unsupported .npy header {header.Trim()}");
        if (m.Groups[1].Value == ">") throw new InvalidDataException($"{path}: big-endian .npy is not supported");
        if (m.Groups[4].Value == "True") throw new InvalidDataException($"{path}: Fortran-order .npy is not supported");
        string kind = m.Groups[2].Value + m.Groups[3].Value;
        long[] shape = m.Groups[5].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        int size = kind switch
        {
            "f4" => 4,
            "f2" => 2,
            "f8" => 8,
            _ => throw new InvalidDataException($"{path}: .npy dtype '{kind}' is not supported (expected f2, f4 or f8)"),
        };
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (dataStart + count * size != bytes.Length)
            throw new InvalidDataException($"{path}: .npy data is {bytes.Length - dataStart} bytes, shape {VectorTensor.Format(shape)} needs {count * size}");
        var data = new float[count];
        ReadOnlySpan<byte> raw = bytes.AsSpan((int)dataStart);
        switch (size)
        {
            case 4: MemoryMarshal.Cast<byte, float>(raw).CopyTo(data); break;
            case 2: for (int i = 0; i < data.Length; i++) data[i] = (float)BitConverter.ToHalf(raw.Slice(i * 2, 2)); break;
            default: for (int i = 0; i < data.Length; i++) data[i] = (float)BitConverter.ToDouble(raw.Slice(i * 8, 8)); break;
        }
        return new VectorTensor(shape, data);
    }

    public static void Write(string path, VectorTensor tensor)
    {
        string dims = tensor.Shape.Length == 1 ? $"{tensor.Shape[0]}," : string.Join(", ", tensor.Shape);
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        // numpy pads the header with spaces and a newline so that the data starts 64-byte aligned.
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + (64 - total % 64) % 64) + "\n";
        VectorFile.WriteAtomically(path, f =>
        {
            f.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
            f.Write(BitConverter.GetBytes((ushort)header.Length));
            f.Write(Encoding.ASCII.GetBytes(header));
            f.Write(MemoryMarshal.AsBytes(tensor.Data.AsSpan()));
        });
    }
}
