using System.Text.Json;
using SteerEngine.Server.Http;

namespace SteerEngine.Server.Batches;

public sealed record RequestCounts(int Total, int Completed, int Failed);

/// <summary>The Batch API's object, as persisted in <c>{batch}/batch.json</c> and returned by the routes.</summary>
public sealed record BatchObject(
    string Id, string Object, string Endpoint, object? Errors, string InputFileId, string CompletionWindow, string Status,
    string? OutputFileId, string? ErrorFileId, long CreatedAt, long? InProgressAt, long ExpiresAt, long? FinalizingAt,
    long? CompletedAt, long? FailedAt, long? ExpiredAt, long? CancellingAt, long? CancelledAt, RequestCounts RequestCounts,
    Dictionary<string, string>? Metadata);

/// <summary>One directory per batch job: its state, its output and error lines so far.</summary>
public sealed class BatchStore
{
    readonly string _dir;
    readonly object _gate = new();

    public BatchStore(string directory)
    {
        _dir = directory;
        Directory.CreateDirectory(directory);
    }

    public static bool IsId(string id) => id.StartsWith("batch_", StringComparison.Ordinal) && id.Length <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    public string OutputPath(string id) => Path.Combine(_dir, id, "output.jsonl");
    public string ErrorPath(string id) => Path.Combine(_dir, id, "errors.jsonl");
    string StatePath(string id) => Path.Combine(_dir, id, "batch.json");

    public void Save(BatchObject batch)
    {
        lock (_gate)
        {
            Directory.CreateDirectory(Path.Combine(_dir, batch.Id));
            AtomicFile.Write(StatePath(batch.Id), ServerJson.Line(batch));
        }
    }

    public BatchObject? Find(string id)
    {
        lock (_gate)
            return IsId(id) && File.Exists(StatePath(id)) ? JsonSerializer.Deserialize<BatchObject>(File.ReadAllText(StatePath(id)), ServerJson.Options) : null;
    }

    public IReadOnlyList<BatchObject> All()
    {
        lock (_gate)
            return Directory.EnumerateDirectories(_dir).Select(d => Path.GetFileName(d)).Where(IsId)
                .Select(id => File.Exists(StatePath(id)) ? JsonSerializer.Deserialize<BatchObject>(File.ReadAllText(StatePath(id)), ServerJson.Options) : null)
                .OfType<BatchObject>().OrderByDescending(b => b.CreatedAt).ThenByDescending(b => b.Id).ToList();
    }
}
