using System.Text;
using System.Text.Json;

namespace SteerEngine.Generation.Jobs;

/// <summary>
/// A JSONL results file that survives being killed: records are whole lines, appended and fsync'd
/// in groups; on resume a torn last line (a kill mid-write) is cut off and the ids of the complete
/// records are handed back so the job skips them. An existing file is never overwritten.
/// </summary>
public sealed class JsonlOutput : IDisposable
{
    readonly FileStream _stream;
    readonly List<byte[]> _pending = [];
    DateTime _lastFlush = DateTime.UtcNow;

    JsonlOutput(FileStream stream) => _stream = stream;

    public string Path => _stream.Name;

    /// <summary>
    /// Opens <paramref name="path"/> for appending. <paramref name="done"/> gets the resume key
    /// (<see cref="CallerId.Key(JsonElement)"/>) of the "id" of every complete record already there.
    /// </summary>
    public static JsonlOutput Open(string path, bool resume, out HashSet<string> done)
    {
        done = [];
        if (File.Exists(path) && new FileInfo(path).Length > 0)
        {
            if (!resume) throw new IOException($"{path}: output file already exists; pass --resume to continue it, or choose another --out");
            long keep = ScanComplete(path, done);
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.SetLength(keep);
        }
        string? dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        return new JsonlOutput(stream);
    }

    /// <summary>Reads the records; returns the byte length of the complete ones (a torn last line is dropped).</summary>
    static long ScanComplete(string path, HashSet<string> done)
    {
        byte[] bytes = File.ReadAllBytes(path);
        long good = 0;
        int start = 0, lineNo = 0;
        while (start < bytes.Length)
        {
            int end = Array.IndexOf(bytes, (byte)'\n', start);
            lineNo++;
            if (end < 0) break; // no newline: the write was torn by a kill
            var line = bytes.AsSpan(start, end - start);
            string id;
            try
            {
                using var doc = JsonDocument.Parse(line.ToArray());
                id = CallerId.Key(doc.RootElement.GetProperty("id"));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not a complete record with an \"id\"; the file was changed by something other than this job");
            }
            done.Add(id);
            good = end + 1;
            start = end + 1;
        }
        return good;
    }

    /// <summary>Queues one record; it reaches the disk at the next flush (at most a second later, or every 64 records).</summary>
    public void Append(ReadOnlySpan<byte> jsonLine)
    {
        var line = new byte[jsonLine.Length + 1];
        jsonLine.CopyTo(line);
        line[^1] = (byte)'\n';
        _pending.Add(line);
        if (_pending.Count >= 64 || DateTime.UtcNow - _lastFlush > TimeSpan.FromSeconds(1)) Flush();
    }

    public void Flush()
    {
        if (_pending.Count > 0)
        {
            // One write per group: a kill can tear at most the last line, which resume drops.
            _stream.Write(_pending.SelectMany(b => b).ToArray());
            _pending.Clear();
        }
        _stream.Flush(flushToDisk: true);
        _lastFlush = DateTime.UtcNow;
    }

    public void Dispose()
    {
        Flush();
        _stream.Dispose();
    }

    public static string ToLine(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
