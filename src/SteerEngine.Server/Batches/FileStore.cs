using System.Text.Json;
using SteerEngine.Server.Http;
using SteerEngine.Server.Serving;

namespace SteerEngine.Server.Batches;

/// <summary>The Files API's object.</summary>
public sealed record FileObject(string Id, string Object, long Bytes, long CreatedAt, string Filename, string Purpose, string Status);

/// <summary>
/// Uploaded and produced files under one directory: <c>{id}.data</c> and its <c>{id}.json</c>. Ids are
/// made here and checked on the way in, so a request can name only files of the store.
/// </summary>
public sealed class FileStore
{
    readonly string _dir;

    public FileStore(string directory)
    {
        _dir = directory;
        Directory.CreateDirectory(directory);
    }

    public static bool IsId(string id) => id.StartsWith("file-", StringComparison.Ordinal) && id.Length <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    string DataPath(string id) => Path.Combine(_dir, id + ".data");
    string MetaPath(string id) => Path.Combine(_dir, id + ".json");

    public async Task<FileObject> Save(Stream content, string filename, string purpose, CancellationToken cancel)
    {
        string id = Ids.New("file");
        string temp = DataPath(id) + ".part";
        await using (var f = File.Create(temp)) await content.CopyToAsync(f, cancel);
        File.Move(temp, DataPath(id));
        return Register(id, filename, purpose);
    }

    /// <summary>Moves a finished file (a batch's output) into the store.</summary>
    public FileObject Import(string path, string filename, string purpose)
    {
        string id = Ids.New("file");
        File.Copy(path, DataPath(id) + ".part");
        File.Move(DataPath(id) + ".part", DataPath(id));
        return Register(id, filename, purpose);
    }

    FileObject Register(string id, string filename, string purpose)
    {
        var meta = new FileObject(id, "file", new FileInfo(DataPath(id)).Length, Ids.Now(), Path.GetFileName(filename), purpose, "processed");
        AtomicFile.Write(MetaPath(id), ServerJson.Line(meta));
        return meta;
    }

    public FileObject? Find(string id) =>
        IsId(id) && File.Exists(MetaPath(id)) ? JsonSerializer.Deserialize<FileObject>(File.ReadAllText(MetaPath(id)), ServerJson.Options) : null;

    public FileObject Get(string id) => Find(id) ?? throw ApiException.NotFound($"no file with id '{id}'", "file_id");

    /// <summary>The file's content on disk (for the batch runner, which reads it by id only).</summary>
    public string ContentPath(string id) => DataPath(Get(id).Id);
}

/// <summary>Writes a file whole or not at all: to a temporary name, then renamed over the target.</summary>
public static class AtomicFile
{
    public static void Write(string path, string text)
    {
        string temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
