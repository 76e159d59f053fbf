using System.Collections.Concurrent;
using SteerEngine.Server.Http;
using SteerEngine.Server.Serving;

namespace SteerEngine.Server.Batches;

/// <summary>
/// The Batch API's jobs: checked at creation, run in the background through the same engine as live
/// requests, persisted after every line, and resumed at the next start if the server stopped or died.
/// </summary>
public sealed class BatchRunner(BatchStore store, FileStore files, BatchExecution execution, Action<string> log)
{
    readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new();
    readonly CancellationTokenSource _stopping = new();
    readonly object _gate = new();

    public BatchObject Create(string inputFileId, string endpoint, string window, Dictionary<string, string>? metadata)
    {
        if (!BatchInput.Endpoints.Contains(endpoint))
            throw ApiException.BadRequest($"'endpoint' is '{endpoint}'; supported: {string.Join(", ", BatchInput.Endpoints)}", "endpoint");
        if (window != "24h") throw ApiException.BadRequest($"'completion_window' is '{window}'; only 24h is supported", "completion_window");
        FileObject input = files.Find(inputFileId) ?? throw ApiException.BadRequest($"'input_file_id': no file with id '{inputFileId}'", "input_file_id");
        IReadOnlyList<BatchLine> lines;
        try { lines = BatchInput.Read(files.ContentPath(input.Id), $"file {input.Id} ({input.Filename})", endpoint); }
        catch (ArgumentException e) { throw ApiException.BadRequest(e.Message, "input_file_id", "invalid_batch_input"); }
        long now = Ids.Now();
        var batch = new BatchObject(Ids.New("batch", '_'), "batch", endpoint, null, input.Id, window, "in_progress", null, null,
            now, now, now + 24 * 3600, null, null, null, null, null, null, new RequestCounts(lines.Count, 0, 0), metadata);
        store.Save(batch);
        Start(batch);
        return batch;
    }

    public BatchObject Cancel(string id)
    {
        BatchObject batch = Get(id);
        if (batch.Status is not ("validating" or "in_progress" or "finalizing")) return batch;
        lock (_gate)
        {
            batch = Get(id) with { Status = "cancelling", CancellingAt = Ids.Now() };
            store.Save(batch);
        }
        if (_running.TryGetValue(id, out CancellationTokenSource? cts)) cts.Cancel();
        else Start(batch);
        return store.Find(id)!;
    }

    public BatchObject Get(string id) => store.Find(id) ?? throw ApiException.NotFound($"no batch with id '{id}'", "batch_id");

    public IReadOnlyList<BatchObject> List() => store.All();

    /// <summary>Picks up every job a stopped or killed server left unfinished.</summary>
    public void ResumeAll()
    {
        foreach (BatchObject b in store.All().Where(b => b.Status is "validating" or "in_progress" or "finalizing" or "cancelling"))
        {
            log($"resuming batch {b.Id} ({b.RequestCounts.Completed + b.RequestCounts.Failed}/{b.RequestCounts.Total} done)");
            Start(b);
        }
    }

    /// <summary>The server is stopping: running jobs stop where they are and stay in progress on disk.</summary>
    public void Stop()
    {
        if (!_stopping.IsCancellationRequested) _stopping.Cancel();
    }

    void Start(BatchObject batch)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        if (!_running.TryAdd(batch.Id, cts)) return;
        _ = Task.Run(async () =>
        {
            try { await Process(batch.Id, cts.Token); }
            catch (Exception e) { log($"batch {batch.Id}: {e.Message}"); }
            finally
            {
                _running.TryRemove(batch.Id, out _);
                cts.Dispose();
            }
        });
    }

    async Task Process(string id, CancellationToken cancel)
    {
        BatchObject batch = Get(id);
        bool cancelled = batch.Status == "cancelling";
        if (!cancelled)
        {
            try
            {
                var lines = BatchInput.Read(files.ContentPath(batch.InputFileId), batch.InputFileId, batch.Endpoint);
                DateTime lastSave = DateTime.MinValue;
                await execution.Run(lines, store.OutputPath(id), store.ErrorPath(id), p =>
                {
                    if ((DateTime.UtcNow - lastSave).TotalSeconds < 0.5 && p.Done < p.Total) return;
                    lastSave = DateTime.UtcNow;
                    Update(id, b => b.Status == "in_progress" ? b with { RequestCounts = new RequestCounts(p.Total, p.Done - p.Failed, p.Failed) } : b);
                }, cancel);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested) { return; }
            catch (OperationCanceledException) { cancelled = true; }
            catch (Exception e)
            {
                Update(id, b => b with { Status = "failed", FailedAt = Ids.Now(), Errors = new { @object = "list", data = new[] { new { code = "batch_failed", message = e.Message, line = (int?)null } } } });
                return;
            }
        }
        Finish(id, cancelled);
    }

    void Finish(string id, bool cancelled)
    {
        Update(id, b => b with { Status = cancelled ? "cancelling" : "finalizing", FinalizingAt = cancelled ? b.FinalizingAt : Ids.Now() });
        string output = store.OutputPath(id), errors = store.ErrorPath(id);
        int completed = File.Exists(output) ? File.ReadLines(output).Count(l => l.Length > 0) : 0;
        int failed = File.Exists(errors) ? File.ReadLines(errors).Count(l => l.Length > 0) : 0;
        string? outputId = completed > 0 || !cancelled ? files.Import(File.Exists(output) ? output : CreateEmpty(output), $"{id}_output.jsonl", "batch_output").Id : null;
        string? errorId = failed > 0 ? files.Import(errors, $"{id}_error.jsonl", "batch_output").Id : null;
        long now = Ids.Now();
        Update(id, b => b with
        {
            Status = cancelled ? "cancelled" : "completed",
            OutputFileId = outputId,
            ErrorFileId = errorId,
            CompletedAt = cancelled ? null : now,
            CancelledAt = cancelled ? now : null,
            RequestCounts = new RequestCounts(b.RequestCounts.Total, completed, failed),
        });
    }

    static string CreateEmpty(string path)
    {
        File.WriteAllText(path, "");
        return path;
    }

    void Update(string id, Func<BatchObject, BatchObject> change)
    {
        lock (_gate) store.Save(change(Get(id)));
    }
}
