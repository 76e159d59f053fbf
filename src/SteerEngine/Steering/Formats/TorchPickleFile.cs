using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using SteerEngine.Model;

namespace SteerEngine.Steering.Formats;

/// <summary>
/// PyTorch <c>torch.save</c> files (.pt, .pth): a zip archive, entries stored uncompressed, under one
/// top-level folder (the file's stem for a path save, "archive" for a stream save) holding
/// <c>data.pkl</c> (the pickled object, tensors as <c>torch._utils._rebuild_tensor_v2(storage, offset,
/// size, stride, requires_grad, hooks)</c> with storages as persistent ids
/// <c>('storage', torch.FloatStorage, key, location, numel)</c>), <c>data/&lt;key&gt;</c> (each storage's
/// raw little-endian bytes), <c>version</c> and, from torch 2, <c>byteorder</c>.
/// Reads one tensor (f32, bf16, f16 or f64; any strides and storage offset), or a dict with exactly one
/// tensor value; writes one f32 tensor that <c>torch.load</c> reads back.
/// </summary>
internal static class TorchPickleFile
{
    enum StorageType { Float, Double, Half, BFloat16 }

    sealed record Storage(StorageType Type, string Key, long Numel);

    sealed record Tensor(Storage Storage, long Offset, long[] Size, long[] Stride);

    static int ElementSize(StorageType t) => t switch { StorageType.Double => 8, StorageType.Float => 4, _ => 2 };

    public static VectorTensor Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> magic = stackalloc byte[4];
        int got = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got >= 2 && magic[0] == 0x80 && magic[1] <= 5)
            throw new InvalidDataException($"{path}: a legacy (pre-1.6, non-zip) torch.save file; re-save it with torch.save in torch >= 1.6");
        if (got < 4 || !magic.SequenceEqual("PK\x03\x04"u8))
            throw new InvalidDataException($"{path}: not a torch.save file (expected a zip archive)");
        stream.Position = 0;

        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: damaged or truncated zip archive ({e.Message})", e);
        }
        using (zip)
        {
            try
            {
                return ReadArchive(path, zip);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{path}: damaged zip archive ({e.Message})", e);
            }
        }
    }

    static VectorTensor ReadArchive(string path, ZipArchive zip)
    {
        var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length).ToList();
        if (pickles.Count == 0)
            throw new InvalidDataException($"{path}: zip archive has no <folder>/data.pkl; not a torch.save file");
        if (pickles.Count > 1)
            throw new InvalidDataException($"{path}: zip archive has {pickles.Count} data.pkl folders ({string.Join(", ", pickles.Select(p => p.FullName))}); expected one");
        string folder = pickles[0].FullName[..^"data.pkl".Length];

        if (zip.GetEntry(folder + "byteorder") is { } order && Encoding.ASCII.GetString(ReadEntry(path, order)) is var byteOrder && byteOrder != "little")
            throw new InvalidDataException($"{path}: storages are '{byteOrder}'-endian; only little-endian files are supported");

        string pickleName = $"{path}: {pickles[0].FullName}";
        object? root = PickleReader.Load(ReadEntry(path, pickles[0]), pickleName, id => LoadStorage(pickleName, id), (g, args) => Reduce(pickleName, g, args));
        Tensor tensor = root switch
        {
            Tensor t => t,
            PickleDict d when d.Items.Count(kv => kv.Value is Tensor) == 1 => (Tensor)d.Items.Single(kv => kv.Value is Tensor).Value!,
            PickleDict d => throw new InvalidDataException(
                $"{path}: holds a dict with {d.Items.Count(kv => kv.Value is Tensor)} tensors ({string.Join(", ", d.Items.Where(kv => kv.Value is Tensor).Select(kv => kv.Key).Take(5))}); expected exactly one"),
            _ => throw new InvalidDataException($"{path}: holds a {PickleReader.TypeName(root)}; expected a tensor or a dict with one tensor"),
        };

        string storageName = folder + "data/" + tensor.Storage.Key;
        ZipArchiveEntry entry = zip.GetEntry(storageName)
            ?? throw new InvalidDataException($"{path}: storage {storageName} is missing from the archive");
        return new VectorTensor(tensor.Size, Gather(path, storageName, tensor, ReadEntry(path, entry)));
    }

    static byte[] ReadEntry(string path, ZipArchiveEntry entry)
    {
        if (entry.Length > Array.MaxLength)
            throw new InvalidDataException($"{path}: {entry.FullName} is {entry.Length} bytes, too large for a steering vector");
        var bytes = new byte[entry.Length];
        using Stream s = entry.Open();
        int n = s.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (n != bytes.Length)
            throw new InvalidDataException($"{path}: {entry.FullName} is cut short: {n} of {bytes.Length} bytes");
        return bytes;
    }

    // persistent_load of torch.serialization: ('storage', storage_type, key, location, numel).
    static Storage LoadStorage(string name, object? id)
    {
        if (id is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not PickleGlobal type || t[2] is not string key || t[4] is not long numel)
            throw new InvalidDataException($"{name}: persistent id is not ('storage', type, key, location, numel)");
        StorageType st = type.ToString() switch
        {
            "torch.FloatStorage" => StorageType.Float,
            "torch.DoubleStorage" => StorageType.Double,
            "torch.HalfStorage" => StorageType.Half,
            "torch.BFloat16Storage" => StorageType.BFloat16,
            _ => throw new InvalidDataException($"{name}: tensor storage type {type} is not supported (expected Float, BFloat16, Half or Double storage)"),
        };
        if (numel < 0) throw new InvalidDataException($"{name}: storage {key} has {numel} elements");
        return new Storage(st, key, numel);
    }

    static object? Reduce(string name, PickleGlobal callable, object?[] args)
    {
        switch (callable.ToString())
        {
            case "torch._utils._rebuild_tensor_v2":
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args.Length is not (6 or 7) || args[0] is not Storage storage || args[1] is not long offset
                    || args[2] is not object?[] size || args[3] is not object?[] stride || size.Length != stride.Length
                    || size.Concat(stride).Any(d => d is not long n || n < 0) || offset < 0)
                    throw new InvalidDataException($"{name}: _rebuild_tensor_v2 arguments are not (storage, offset, size, stride, requires_grad, hooks)");
                return new Tensor(storage, offset, size.Cast<long>().ToArray(), stride.Cast<long>().ToArray());
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                return args.Length > 0 && args[0] is Tensor t ? t
                    : throw new InvalidDataException($"{name}: {callable} without a tensor");
            case "collections.OrderedDict":
                return args.Length == 0 ? new PickleDict() : throw new InvalidDataException($"{name}: OrderedDict with arguments");
            default:
                throw new InvalidDataException($"{name}: unsupported global {callable}; expected a tensor or a dict of tensors");
        }
    }

    /// <summary>Element (i0, i1, ...) of the tensor is storage element offset + Σ i_k·stride_k.</summary>
    static float[] Gather(string path, string storageName, Tensor t, byte[] bytes)
    {
        int elementSize = ElementSize(t.Storage.Type);
        if (bytes.Length < t.Storage.Numel * elementSize)
            throw new InvalidDataException($"{path}: storage {storageName} is {bytes.Length} bytes, its {t.Storage.Numel} {t.Storage.Type} elements need {t.Storage.Numel * elementSize}");
        long available = t.Storage.Numel;
        long count = 1, last = t.Offset;
        for (int k = 0; k < t.Size.Length; k++)
        {
            count = checked(count * t.Size[k]);
            if (t.Size[k] > 0) last = checked(last + (t.Size[k] - 1) * t.Stride[k]);
        }
        if (count > Array.MaxLength)
            throw new InvalidDataException($"{path}: tensor of shape {VectorTensor.Format(t.Size)} is too large for a steering vector");
        if (count > 0 && last >= available)
            throw new InvalidDataException(
                $"{path}: storage {storageName} holds {available} elements; shape {VectorTensor.Format(t.Size)} at offset {t.Offset} with strides {VectorTensor.Format(t.Stride)} needs {last + 1}");

        var data = new float[count];
        var index = new long[t.Size.Length];
        long at = t.Offset;
        for (long i = 0; i < count; i++)
        {
            data[i] = Element(bytes, t.Storage.Type, at);
            // Odometer over the dimensions, last fastest (C order).
            for (int k = t.Size.Length - 1; k >= 0; k--)
            {
                at += t.Stride[k];
                if (++index[k] < t.Size[k]) break;
                at -= t.Stride[k] * t.Size[k];
                index[k] = 0;
            }
        }
        return data;
    }

    static float Element(byte[] bytes, StorageType type, long i) => type switch
    {
        StorageType.Float => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(i * 4))),
        StorageType.Double => (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan((int)(i * 8))),
        StorageType.Half => (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.AsSpan((int)(i * 2))),
        _ => BFloat16Convert.ToF32(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)(i * 2)))),
    };

    /// <summary>Writes an f32 tensor as <c>torch.save(t, path)</c> lays it out, the archive folder named after the file's stem.</summary>
    public static void Write(string path, VectorTensor tensor)
    {
        string folder = Path.GetFileNameWithoutExtension(path) + "/";
        VectorFile.WriteAtomically(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            AddEntry(zip, folder + "data.pkl", Pickle(tensor));
            AddEntry(zip, folder + "byteorder", "little"u8);
            AddEntry(zip, folder + "data/0", MemoryMarshal.AsBytes(tensor.Data.AsSpan()));
            AddEntry(zip, folder + "version", "3\n"u8);
        });
    }

    static void AddEntry(ZipArchive zip, string name, ReadOnlySpan<byte> bytes)
    {
        ZipArchiveEntry entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
        // A fixed time stamp (the zip epoch): the same tensor gives the same bytes, so runs of a study compare file by file.
        entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using Stream s = entry.Open();
        s.Write(bytes);
    }

    /// <summary>
    /// The pickle torch.save writes for one contiguous tensor: the storage as persistent id
    /// ('storage', torch.FloatStorage, '0', 'cpu', numel), then _rebuild_tensor_v2(storage, 0, size,
    /// stride, False, OrderedDict()).
    /// </summary>
    static byte[] Pickle(VectorTensor tensor)
    {
        var p = new MemoryStream();
        p.Write([0x80, 2]);
        Global(p, "torch._utils", "_rebuild_tensor_v2");
        p.WriteByte((byte)'(');
        p.WriteByte((byte)'(');
        Unicode(p, "storage");
        Global(p, "torch", "FloatStorage");
        Unicode(p, "0");
        Unicode(p, "cpu");
        Int(p, tensor.Data.Length);
        p.WriteByte((byte)'t');
        p.WriteByte((byte)'Q');
        Int(p, 0);
        long[] stride = new long[tensor.Shape.Length];
        for (int k = stride.Length - 1, s = 1; k >= 0; s *= (int)tensor.Shape[k], k--) stride[k] = s;
        Tuple(p, tensor.Shape);
        Tuple(p, stride);
        p.WriteByte(0x89);
        Global(p, "collections", "OrderedDict");
        p.WriteByte((byte)')');
        p.WriteByte((byte)'R');
        p.WriteByte((byte)'t');
        p.WriteByte((byte)'R');
        p.WriteByte((byte)'.');
        return p.ToArray();
    }

    static void Global(MemoryStream p, string module, string name)
    {
        p.WriteByte((byte)'c');
        p.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
    }

    static void Unicode(MemoryStream p, string s)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(s);
        p.WriteByte((byte)'X');
        p.Write(BitConverter.GetBytes((uint)utf8.Length));
        p.Write(utf8);
    }

    static void Int(MemoryStream p, long v)
    {
        p.WriteByte((byte)'J');
        p.Write(BitConverter.GetBytes(checked((int)v)));
    }

    static void Tuple(MemoryStream p, long[] items)
    {
        p.WriteByte((byte)'(');
        foreach (long v in items) Int(p, v);
        p.WriteByte((byte)'t');
    }
}
