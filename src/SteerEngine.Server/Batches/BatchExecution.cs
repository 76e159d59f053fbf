using System.Text;
using SteerEngine.Generation;
using SteerEngine.Server.Http;

namespace SteerEngine.Server.Batches;

/// <summary>
/// Runs a batch's lines into JSONL output, resumably: lines whose custom_id is already in an output
/// file are skipped, a torn last line (the process died mid-write) is cut off, and each finished line
/// is appended whole and flushed. The server's batch jobs and <c>steer run-batch</c> share it.
/// </summary>
public sealed class BatchExecution(BatchLineRunner runner, ServerLimits limits, int concurrency)
{
    public sealed record Progress(int Total, int Done, int Failed);

    /// <param name="output">successful lines (status 200)</param>
    /// <param name="errors">failed lines; may be the same path as <paramref name="output"/></param>
    public async Task<Progress> Run(IReadOnlyList<BatchLine> lines, string output, string errors, Action<Progress>? onProgress, CancellationToken cancel)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (string path in new[] { output, errors }.Distinct()) done.UnionWith(RepairAndRead(path));
        int failed = errors == output ? CountFailures(output) : CountLines(errors);

        var writeGate = new object();
        using var outStream = Open(output);
        using var errStream = errors == output ? null : Open(errors);
        int finished = lines.Count(l => done.Contains(l.CustomId));
        onProgress?.Invoke(new Progress(lines.Count, finished, failed));
        using var slots = new SemaphoreSlim(concurrency);
        var tasks = new List<Task>();
        try
        {
            foreach (BatchLine line in lines.Where(l => !done.Contains(l.CustomId)))
            {
                await slots.WaitAsync(cancel);
                tasks.Add(Task.Run(async () =>
                {
                    try
                    {
                        BatchOutputLine result = await RunWithRetry(line, cancel);
                        bool ok = result.Response?.StatusCode == 200;
                        byte[] bytes = Encoding.UTF8.GetBytes(ServerJson.Line(result) + "\n");
                        lock (writeGate)
                        {
                            FileStream target = ok ? outStream : errStream ?? outStream;
                            target.Write(bytes);
                            target.Flush();
                            finished++;
                            if (!ok) failed++;
                            onProgress?.Invoke(new Progress(lines.Count, finished, failed));
                        }
                    }
                    finally { slots.Release(); }
                }, CancellationToken.None));
            }
        }
        finally
        {
            // In-flight lines finish or see the cancellation before the files close.
            try { await Task.WhenAll(tasks); } catch (OperationCanceledException) when (cancel.IsCancellationRequested) { }
        }
        cancel.ThrowIfCancellationRequested();
        return new Progress(lines.Count, finished, failed);
    }

    async Task<BatchOutputLine> RunWithRetry(BatchLine line, CancellationToken cancel)
    {
        while (true)
        {
            try { return await runner.Run(line, limits, cancel); }
            catch (EngineBusyException) { await Task.Delay(50, cancel); }
        }
    }

    static FileStream Open(string path) => new(path, FileMode.Append, FileAccess.Write, FileShare.Read);

    /// <summary>Cuts a torn last line off the file and returns the custom_ids of its whole lines.</summary>
    static List<string> RepairAndRead(string path)
    {
        var ids = new List<string>();
        if (!File.Exists(path)) return ids;
        byte[] bytes = File.ReadAllBytes(path);
        int end = Array.LastIndexOf(bytes, (byte)'\n') + 1;
        if (end < bytes.Length)
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Write)) f.SetLength(end);
        foreach (string text in Encoding.UTF8.GetString(bytes, 0, end).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            ids.Add(System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("custom_id").GetString()!);
        return ids;
    }

    static int CountLines(string path) => File.Exists(path) ? File.ReadLines(path).Count(l => l.Length > 0) : 0;

    static int CountFailures(string path) => File.Exists(path)
        ? File.ReadLines(path).Count(l => l.Length > 0 && System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("response").GetProperty("status_code").GetInt32() != 200)
        : 0;
}
