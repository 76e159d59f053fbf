using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SteerEngine.Model;

/// <summary>
/// Writes safetensors files and Hugging Face model directories. Tensor bytes are streamed
/// from a callback, one tensor at a time, so a multi-GB model never sits in memory; every
/// file is written beside its destination and renamed into place only when complete.
/// </summary>
public static class SafetensorsWriter
{
    // Hugging Face transformers refuses to load a safetensors checkpoint whose metadata lacks a known "format".
    static readonly IReadOnlyDictionary<string, string> HuggingFaceMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    // The data buffer starts 8-aligned, as the reference writer pads it, so f32 tensors
    // written in order stay naturally aligned in the mapping.
    const int HeaderAlignment = 8;

    static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes <paramref name="specs"/> in order to <paramref name="path"/>; <paramref name="writeData"/> must
    /// write exactly <see cref="TensorSpec.ByteLength"/> little-endian bytes for each tensor.
    /// </summary>
    public static void Write(string path, IReadOnlyList<TensorSpec> specs, Action<TensorSpec, Stream> writeData,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        CheckSpecs(specs);
        byte[] header = Header(specs, metadata);
        WriteAtomically(path, file =>
        {
            Span<byte> lengthField = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthField, (ulong)header.Length);
            file.Write(lengthField);
            file.Write(header);
            foreach (var spec in specs)
            {
                var data = new TensorDataStream(file, spec);
                writeData(spec, data);
                data.CheckComplete();
            }
        });
    }

    /// <summary>
    /// Writes a Hugging Face model directory: model.safetensors if everything fits in one shard of
    /// <paramref name="maxShardBytes"/> data bytes, else model-0000i-of-0000N.safetensors shards and
    /// model.safetensors.index.json. A tensor larger than the limit gets a shard of its own.
    /// </summary>
    public static void WriteModel(string dir, IReadOnlyList<TensorSpec> specs, Action<TensorSpec, Stream> writeData,
        long maxShardBytes = 5L << 30)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        CheckSpecs(specs);
        var shards = Shard(specs, maxShardBytes);
        Directory.CreateDirectory(dir);
        string single = Path.Combine(dir, TensorStore.SingleFileName);
        string index = Path.Combine(dir, TensorStore.IndexFileName);

        // Each layout removes the other's entry file from an earlier write, so that a reader
        // cannot pick up stale weights: model.safetensors wins over an index when both exist.
        if (shards.Count == 1)
        {
            Write(single, shards[0], writeData, HuggingFaceMetadata);
            File.Delete(index);
            return;
        }
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string shardName = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(Path.Combine(dir, shardName), shards[i], writeData, HuggingFaceMetadata);
            foreach (var spec in shards[i])
                weightMap.Add(spec.Name, shardName);
        }
        long totalSize = specs.Sum(s => s.ByteLength);
        WriteAtomically(index, file =>
        {
            using var json = new Utf8JsonWriter(file, JsonOptions with { Indented = true });
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, shardName) in weightMap)
                json.WriteString(name, shardName);
            json.WriteEndObject();
            json.WriteEndObject();
        });
        File.Delete(single);
    }

    static List<List<TensorSpec>> Shard(IReadOnlyList<TensorSpec> specs, long maxShardBytes)
    {
        var shards = new List<List<TensorSpec>> { new() };
        long bytes = 0;
        foreach (var spec in specs)
        {
            if (shards[^1].Count > 0 && bytes + spec.ByteLength > maxShardBytes)
            {
                shards.Add([]);
                bytes = 0;
            }
            shards[^1].Add(spec);
            bytes += spec.ByteLength;
        }
        return shards;
    }

    static void CheckSpecs(IReadOnlyList<TensorSpec> specs)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            if (spec.Name == SafetensorsHeader.MetadataKey)
                throw new ArgumentException($"'{SafetensorsHeader.MetadataKey}' is reserved and cannot name a tensor", nameof(specs));
            if (!names.Add(spec.Name))
                throw new ArgumentException($"tensor '{spec.Name}' appears twice", nameof(specs));
            if (spec.Shape.Any(d => d < 0))
                throw new ArgumentException($"tensor '{spec.Name}' has negative dimension in shape {Shapes.Format(spec.Shape)}", nameof(specs));
            try
            {
                _ = spec.ByteLength;
            }
            catch (OverflowException e)
            {
                throw new ArgumentException($"tensor '{spec.Name}' of shape {Shapes.Format(spec.Shape)} has too many bytes", nameof(specs), e);
            }
        }
    }

    /// <summary>The JSON header, tensors laid out back to back in order, padded with spaces to the alignment.</summary>
    static byte[] Header(IReadOnlyList<TensorSpec> specs, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var spec in specs)
            {
                json.WriteStartObject(spec.Name);
                json.WriteString("dtype", DTypes.Name(spec.DType));
                json.WriteStartArray("shape");
                foreach (long d in spec.Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + spec.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += spec.ByteLength;
            }
            json.WriteEndObject();
        }
        int padding = (HeaderAlignment - buffer.WrittenCount % HeaderAlignment) % HeaderAlignment;
        buffer.GetSpan(padding)[..padding].Fill((byte)' ');
        buffer.Advance(padding);
        if (buffer.WrittenCount > SafetensorsHeader.MaxLength)
            throw new ArgumentException($"header of {buffer.WrittenCount} bytes exceeds the {SafetensorsHeader.MaxLength}-byte limit readers enforce", nameof(specs));
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes <paramref name="path"/>.tmp, syncs it to disk, then renames it over <paramref name="path"/>.</summary>
    internal static void WriteAtomically(string path, Action<FileStream> write)
    {
        string temporary = path + ".tmp";
        try
        {
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
            throw;
        }
    }

    /// <summary>
    /// What a writeData callback sees: a forward-only stream that refuses bytes past the tensor's
    /// length, so a wrong callback is caught at the tensor it got wrong rather than as a corrupt file.
    /// </summary>
    sealed class TensorDataStream(FileStream file, TensorSpec spec) : Stream
    {
        long written;

        public void CheckComplete()
        {
            if (written != spec.ByteLength)
                throw new InvalidOperationException($"writeData for tensor '{spec.Name}' wrote {written} bytes, expected {spec.ByteLength}");
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (buffer.Length > spec.ByteLength - written)
                throw new InvalidOperationException(
                    $"writeData for tensor '{spec.Name}' wrote {written + buffer.Length} bytes or more, expected {spec.ByteLength}");
            file.Write(buffer);
            written += buffer.Length;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void WriteByte(byte value) => Write([value]);

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => written;
            set => throw new NotSupportedException();
        }

        // The file is flushed once, when complete.
        public override void Flush() { }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
