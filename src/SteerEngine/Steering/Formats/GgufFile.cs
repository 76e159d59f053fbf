using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace SteerEngine.Steering.Formats;

/// <summary>A tensor's entry in a GGUF file: dims in ggml order (fastest first), ggml type, offset into the data section.</summary>
internal sealed record GgufTensorInfo(string Name, ulong[] Dims, uint Type, ulong Offset);

/// <summary>
/// The GGUF container (versions 2 and 3, little-endian), as llama.cpp's gguf.cpp and gguf-py lay it out:
/// "GGUF", version u32, tensor_count u64, kv_count u64; the key/value pairs (key: u64 length + UTF-8,
/// type u32, value); the tensor infos (name, n_dims u32, dims u64[n_dims], type u32, offset u64); padding to
/// <c>general.alignment</c> (default 32); then the data section, each tensor at an aligned offset into it.
/// </summary>
internal sealed class GgufFile
{
    public const uint TypeF32 = 0;
    const uint DefaultAlignment = 32;
    const int MaxDims = 4;

    enum ValueType : uint { UInt8, Int8, UInt16, Int16, UInt32, Int32, Float32, Bool, String, Array, UInt64, Int64, Float64 }

    readonly string path;
    readonly byte[] bytes;

    GgufFile(string path, byte[] bytes, uint version, Dictionary<string, object> metadata, List<GgufTensorInfo> tensors, long dataStart)
    {
        this.path = path;
        this.bytes = bytes;
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        DataStart = dataStart;
    }

    public uint Version { get; }

    /// <summary>Values are byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double, or object[] for arrays.</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }

    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    public long DataStart { get; }

    public static GgufFile Read(string path)
    {
        byte[] bytes = VectorFile.ReadAllBytes(path);
        var r = new Reader(path, bytes);
        if (bytes.Length < 4 || !bytes.AsSpan(0, 4).SequenceEqual("GGUF"u8))
            throw new InvalidDataException($"{path}: not a GGUF file (bad magic {Printable(bytes.AsSpan(0, Math.Min(4, bytes.Length)))}, expected \"GGUF\")");
        r.Skip(4);
        uint version = r.U32("the version");
        if (version is not (2 or 3))
            throw new InvalidDataException($"{path}: GGUF version {version} is not supported (expected 2 or 3, little-endian)");
        ulong tensorCount = r.U64("the tensor count"), kvCount = r.U64("the metadata count");
        // Each entry takes at least 8 bytes, so a count beyond the file length is corrupt, not merely large.
        if (tensorCount > (ulong)bytes.Length || kvCount > (ulong)bytes.Length)
            throw new InvalidDataException($"{path}: header claims {tensorCount} tensors and {kvCount} metadata entries, more than the file can hold");

        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = r.String($"metadata key {i}");
            var type = (ValueType)r.U32($"the type of '{key}'");
            if (!metadata.TryAdd(key, r.Value(type, key)))
                throw new InvalidDataException($"{path}: metadata key '{key}' appears twice");
        }

        uint alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out object? a))
        {
            if (a is not uint u || u == 0 || (u & (u - 1)) != 0)
                throw new InvalidDataException($"{path}: general.alignment is {a} ({a.GetType().Name}); expected a power of two as u32");
            alignment = u;
        }

        var tensors = new List<GgufTensorInfo>();
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = r.String($"tensor name {i}");
            uint nDims = r.U32($"the dimension count of tensor '{name}'");
            if (nDims is 0 or > MaxDims)
                throw new InvalidDataException($"{path}: tensor '{name}' has {nDims} dimensions (expected 1 to {MaxDims})");
            var dims = new ulong[nDims];
            for (int d = 0; d < nDims; d++) dims[d] = r.U64($"the dimensions of tensor '{name}'");
            uint type = r.U32($"the type of tensor '{name}'");
            ulong offset = r.U64($"the offset of tensor '{name}'");
            if (offset % alignment != 0)
                throw new InvalidDataException($"{path}: tensor '{name}' is at offset {offset}, not a multiple of the alignment {alignment}");
            tensors.Add(new GgufTensorInfo(name, dims, type, offset));
        }
        long dataStart = Align(r.Position, alignment);
        if (tensorCount > 0 && dataStart > bytes.Length)
            throw new InvalidDataException($"{path}: file ends at byte {bytes.Length}, before the data section at {dataStart}; truncated");
        return new GgufFile(path, bytes, version, metadata, tensors, dataStart);
    }

    /// <summary>The bytes of an f32 tensor, checked to lie inside the file.</summary>
    public float[] ReadF32(GgufTensorInfo t)
    {
        if (t.Type != TypeF32)
            throw new InvalidDataException($"{path}: tensor '{t.Name}' has type {TypeName(t.Type)}; control vectors are F32");
        ulong count = t.Dims.Aggregate(1UL, (a, d) => d == 0 || a <= ulong.MaxValue / d ? a * d : ulong.MaxValue);
        long available = bytes.Length - DataStart;
        if (count > (ulong)Array.MaxLength || t.Offset > (ulong)available || count * 4 > (ulong)available - t.Offset)
            throw new InvalidDataException(
                $"{path}: tensor '{t.Name}' ({count} F32 elements at data offset {t.Offset}) runs past the end of the file ({available} data bytes); truncated");
        var data = new float[count];
        bytes.AsSpan((int)(DataStart + (long)t.Offset), (int)count * 4).CopyTo(MemoryMarshal.AsBytes(data.AsSpan()));
        return data;
    }

    /// <summary>
    /// Writes a GGUF v3 file as gguf-py's GGUFWriter does: the pairs in order, then the f32 1-D tensors,
    /// each tensor's data padded to the alignment.
    /// </summary>
    /// <param name="metadata">string and uint values.</param>
    public static void Write(Stream s, IReadOnlyList<(string Key, object Value)> metadata, IReadOnlyList<(string Name, float[] Data)> tensors)
    {
        var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        w.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(w, key);
            switch (value)
            {
                case string v: w.Write((uint)ValueType.String); WriteString(w, v); break;
                case uint v: w.Write((uint)ValueType.UInt32); w.Write(v); break;
                default: throw new ArgumentException($"metadata '{key}': cannot write a {value.GetType().Name}");
            }
        }
        ulong offset = 0;
        foreach (var (name, data) in tensors)
        {
            WriteString(w, name);
            w.Write(1u);
            w.Write((ulong)data.Length);
            w.Write(TypeF32);
            w.Write(offset);
            offset += (ulong)Align(data.Length * 4L, DefaultAlignment);
        }
        Pad(w, DefaultAlignment);
        foreach (var (_, data) in tensors)
        {
            w.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            Pad(w, DefaultAlignment);
        }
        w.Flush();
    }

    static void WriteString(BinaryWriter w, string s)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)utf8.Length);
        w.Write(utf8);
    }

    static void Pad(BinaryWriter w, uint alignment)
    {
        long at = w.BaseStream.Position;
        w.Write(new byte[Align(at, alignment) - at]);
    }

    static long Align(long n, uint alignment) => (n + alignment - 1) / alignment * alignment;

    // ggml_type (ggml.h), for messages about tensors of a type other than F32.
    static readonly string[] TypeNames =
    [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
        "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64",
        "F64", "IQ1_M", "BF16",
    ];

    static string TypeName(uint type) => type < TypeNames.Length ? $"{TypeNames[type]} ({type})" : $"{type}";

    static string Printable(ReadOnlySpan<byte> b) => "\"" + string.Concat(b.ToArray().Select(c => c is >= 0x20 and < 0x7f ? ((char)c).ToString() : $"\\x{c:x2}")) + "\"";

    /// <summary>Little-endian reads that name what they were reading when the file ends.</summary>
    sealed class Reader(string path, byte[] bytes)
    {
        public long Position { get; private set; }

        ReadOnlySpan<byte> Take(long n, string what)
        {
            if (n > bytes.Length - Position)
                throw new InvalidDataException($"{path}: file ends at byte {bytes.Length} while reading {what}; truncated");
            var span = bytes.AsSpan((int)Position, (int)n);
            Position += n;
            return span;
        }

        public void Skip(long n) => Take(n, "the header");
        public uint U32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
        public ulong U64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));

        public string String(string what)
        {
            ulong n = U64(what);
            if (n > (ulong)(bytes.Length - Position))
                throw new InvalidDataException($"{path}: {what} claims {n} bytes, past the end of the file at byte {bytes.Length}; truncated");
            return Encoding.UTF8.GetString(Take((long)n, what));
        }

        public object Value(ValueType type, string key) => type switch
        {
            ValueType.UInt8 => Take(1, key)[0],
            ValueType.Int8 => (sbyte)Take(1, key)[0],
            ValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key)),
            ValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Take(2, key)),
            ValueType.UInt32 => U32(key),
            ValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(Take(4, key)),
            ValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(Take(4, key)),
            ValueType.Bool => Take(1, key)[0] != 0,
            ValueType.String => String($"the value of '{key}'"),
            ValueType.UInt64 => U64(key),
            ValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(Take(8, key)),
            ValueType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key)),
            ValueType.Array => Array(key),
            _ => throw new InvalidDataException($"{path}: metadata '{key}' has value type {(uint)type}, which GGUF does not define"),
        };

        object[] Array(string key)
        {
            var type = (ValueType)U32($"the element type of '{key}'");
            ulong count = U64($"the length of '{key}'");
            if (count > (ulong)(bytes.Length - Position))
                throw new InvalidDataException($"{path}: array '{key}' claims {count} elements, more than the rest of the file holds; truncated");
            var items = new object[count];
            for (ulong i = 0; i < count; i++) items[i] = Value(type, key);
            return items;
        }
    }
}
