using System.Buffers.Binary;
using System.Text;
using SteerEngine.Model;

namespace SteerEngine.Tests.Model;

/// <summary>Builds safetensors files byte by byte, for tests that need them malformed on purpose.</summary>
static class SafetensorsTestFiles
{
    /// <summary>An 8-byte length field, the header as given, then <paramref name="dataLength"/> bytes of data.</summary>
    public static byte[] Raw(string header, int dataLength) => Raw(Encoding.UTF8.GetBytes(header), dataLength);

    public static byte[] Raw(byte[] header, int dataLength)
    {
        var file = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        for (int i = 0; i < dataLength; i++)
            file[8 + header.Length + i] = (byte)(i * 37 + 11);
        return file;
    }

    public static byte[] WithHeaderLength(ulong headerLength, int totalLength)
    {
        var file = new byte[totalLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, headerLength);
        return file;
    }

    public static string NewTemporaryDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "steerengine-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Random bytes for each spec, seeded, so a test can compare what it reads back.</summary>
    public static Dictionary<string, byte[]> RandomData(IEnumerable<TensorSpec> specs, int seed)
    {
        var random = new Random(seed);
        var data = new Dictionary<string, byte[]>();
        foreach (var spec in specs)
        {
            var bytes = new byte[spec.ByteLength];
            random.NextBytes(bytes);
            data[spec.Name] = bytes;
        }
        return data;
    }

    public static unsafe byte[] ReadBytes(SafetensorsFile file, TensorInfo t) =>
        new ReadOnlySpan<byte>(file.DataPointer(t), checked((int)t.ByteLength)).ToArray();

    public static unsafe byte[] ReadBytes(TensorStore store, TensorInfo t) =>
        new ReadOnlySpan<byte>(store.DataPointer(t), checked((int)t.ByteLength)).ToArray();
}
