using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace SteerEngine.Model;

/// <summary>
/// One safetensors file, memory-mapped read-only: an 8-byte little-endian header length N,
/// N bytes of UTF-8 JSON describing the tensors, then the data buffer. The header is fully
/// validated at open, so every <see cref="TensorInfo"/> here points inside the mapping.
/// Tensor data is reached through pointers because files pass 2 GB, beyond what a Span can span.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    const int LengthFieldBytes = 8;

    readonly MemoryMappedFile map;
    readonly MemoryMappedViewAccessor view;
    readonly byte* start;
    readonly long fileLength;
    bool disposed;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* start, long fileLength,
        Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        this.map = map;
        this.view = view;
        this.start = start;
        this.fileLength = fileLength;
        Tensors = tensors;
        Metadata = metadata;
    }

    public static SafetensorsFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            long fileLength = stream.Length;
            var (tensors, metadata) = ReadHeader(path, stream, fileLength);

            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new SafetensorsFile(path, map, view, pointer + view.PointerOffset, fileLength, tensors, metadata);
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ReadHeader(string path, FileStream stream, long fileLength)
    {
        if (fileLength < LengthFieldBytes)
            throw new ModelFormatException($"{path}: file is {fileLength} bytes, shorter than the {LengthFieldBytes}-byte header length field");
        Span<byte> lengthField = stackalloc byte[LengthFieldBytes];
        stream.ReadExactly(lengthField);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthField);
        if (headerLength == 0)
            throw new ModelFormatException($"{path}: header length is 0; expected a JSON object");
        if (headerLength > SafetensorsHeader.MaxLength)
            throw new ModelFormatException($"{path}: header length {headerLength} exceeds the {SafetensorsHeader.MaxLength}-byte limit");
        long dataStart = LengthFieldBytes + (long)headerLength;
        if (dataStart > fileLength)
            throw new ModelFormatException($"{path}: header length {headerLength} runs past end of file ({fileLength} bytes)");

        var json = new byte[headerLength];
        stream.ReadExactly(json);
        return SafetensorsHeader.Parse(path, json, dataStart, fileLength - dataStart);
    }

    /// <summary>The first byte of <paramref name="t"/>'s data, valid until this file is disposed.</summary>
    public byte* DataPointer(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (t.File != Path || t.DataOffset < 0 || t.ByteLength < 0 || t.DataOffset > fileLength - t.ByteLength)
            throw new ArgumentException($"tensor '{t.Name}' ({t.File} at {t.DataOffset}, {t.ByteLength} bytes) is not inside {Path}", nameof(t));
        return start + t.DataOffset;
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }
}
