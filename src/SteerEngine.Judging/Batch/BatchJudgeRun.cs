using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI.Batch;
using OpenAI.Chat;
using OpenAI.Files;
using SteerEngine.Generation.Jobs;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Run;
using SteerEngine.Judging.Scoring;

namespace SteerEngine.Judging.Batch;

/// <summary>Limits of one Batch API input file (OpenAI's: 50 000 requests, 200 MB).</summary>
public sealed record BatchLimits(int MaxRequests = 50_000, long MaxBytes = 190_000_000);

/// <summary>One submitted part: its request file, and the ids the API gave it once known.</summary>
public sealed class BatchPart
{
    public required string RequestFile { get; init; }
    public int Requests { get; init; }
    public string? InputFileId { get; set; }
    public string? BatchId { get; set; }
    public string Status { get; set; } = "new";
    public bool Converted { get; set; }
}

/// <summary>The state of a batch run, kept beside the output as <c>OUT.batch/state.json</c> and rewritten atomically after every step.</summary>
public sealed class BatchState
{
    public List<BatchPart> Parts { get; set; } = [];
}

/// <summary>
/// Judging through the OpenAI Batch API (or a server that speaks it, such as <c>steer serve</c>):
/// the units not yet in the output become request lines (custom_id = unit id and call key), split
/// into files under the API's request and size limits; each file is uploaded and a batch created;
/// the batches are polled; their output files are downloaded and scored like live replies, one
/// record per unit. Every step is written to the state file before the next, so a killed run,
/// started again with the same command, picks up where it stopped: it never submits a part whose
/// batch id it already holds, and converts only what the output lacks. A unit whose request got
/// no reply (an error line, an expired batch) is recorded as failed.
/// </summary>
public sealed class BatchJudgeRun(OpenAiEndpoint endpoint, BatchLimits? limits = null, TimeSpan? poll = null)
{
    static readonly JsonSerializerOptions StateJson = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    readonly BatchLimits _limits = limits ?? new BatchLimits();
    readonly TimeSpan _poll = poll ?? TimeSpan.FromSeconds(30);

    public static string StateDirectory(string outPath) => outPath + ".batch";

    /// <summary>Runs to the end (every part converted). <paramref name="report"/> hears each step, for the progress display.</summary>
    public async Task RunAsync(Func<IEnumerable<JudgeUnit>> units, string outPath, Prices prices, JudgeProgress progress,
        Action<string>? report = null, CancellationToken cancel = default)
    {
        string dir = StateDirectory(outPath);
        string statePath = Path.Combine(dir, "state.json");
        Directory.CreateDirectory(dir);
        BatchState state = File.Exists(statePath) ? Load(statePath) : new BatchState();
        var options = endpoint.ClientOptions();
        var files = new OpenAIFileClient(new ApiKeyCredential(endpoint.ApiKey), options);
        var batches = new BatchClient(new ApiKeyCredential(endpoint.ApiKey), new BatchClientOptions { Endpoint = endpoint.BaseUrl });

        using JsonlOutput output = JsonlOutput.Open(outPath, resume: true, out HashSet<string> done);
        var byId = new Dictionary<string, JudgeUnit>();
        foreach (JudgeUnit u in units()) byId[u.Id] = u;
        progress.Total = byId.Count;
        progress.Skipped = byId.Keys.Count(id => done.Contains(CallerId.Key(id)));
        progress.Clock.Start();

        if (state.Parts.Count == 0)
        {
            state.Parts = WriteRequestFiles(byId.Values.Where(u => !done.Contains(CallerId.Key(u.Id))), dir);
            Save(statePath, state);
            report?.Invoke($"{state.Parts.Count} batch file(s), {state.Parts.Sum(p => p.Requests)} requests");
        }
        foreach (BatchPart part in state.Parts.Where(p => p.BatchId is null))
        {
            if (part.InputFileId is null)
            {
                await using var stream = File.OpenRead(part.RequestFile);
                OpenAIFile file = (await files.UploadFileAsync(stream, Path.GetFileName(part.RequestFile), FileUploadPurpose.Batch, cancel)).Value;
                part.InputFileId = file.Id;
                Save(statePath, state);
            }
            var body = new JsonObject { ["input_file_id"] = part.InputFileId, ["endpoint"] = "/v1/chat/completions", ["completion_window"] = "24h" };
            CreateBatchOperation op = await batches.CreateBatchAsync(BinaryContent.Create(BinaryData.FromString(body.ToJsonString())), false,
                new RequestOptions { CancellationToken = cancel });
            part.BatchId = op.BatchId;
            part.Status = "submitted";
            Save(statePath, state);
            report?.Invoke($"submitted {part.BatchId} ({part.Requests} requests)");
        }
        var gate = new object();
        while (state.Parts.Any(p => !p.Converted))
        {
            foreach (BatchPart part in state.Parts.Where(p => !p.Converted))
            {
                ClientResult raw = await batches.GetBatchAsync(part.BatchId!, new RequestOptions { CancellationToken = cancel });
                using var doc = JsonDocument.Parse(raw.GetRawResponse().Content);
                JsonElement b = doc.RootElement;
                part.Status = b.GetProperty("status").GetString() ?? "unknown";
                if (part.Status is not ("completed" or "failed" or "expired" or "cancelled")) continue;
                var replies = new Dictionary<string, (JudgeReply? Reply, string? Error)>();
                foreach (string key in new[] { "output_file_id", "error_file_id" })
                    if (b.TryGetProperty(key, out var f) && f.ValueKind == JsonValueKind.String)
                        foreach (var (id, reply) in ReadResults((await files.DownloadFileAsync(f.GetString()!, cancel)).Value))
                            replies[id] = reply;
                foreach (JudgeUnit unit in UnitsOf(part, byId))
                {
                    if (done.Contains(CallerId.Key(unit.Id))) continue;
                    var calls = unit.Requests();
                    var got = calls.Select(c => replies.TryGetValue(CustomId(unit, c.Key), out var r) ? r : (null, $"no reply in batch {part.BatchId} ({part.Status})")).ToList();
                    JudgeOutcome outcome = UnitScoring.Interpret(unit, got.Select(g => g.Item1).ToList(), got.Select(g => g.Item2).ToList());
                    double? cost = prices.Cost(endpoint.Model, outcome.PromptTokens, outcome.CompletionTokens, batch: true);
                    lock (gate) output.Append(Encoding.UTF8.GetBytes(JudgeRecord.Line(unit, outcome, "openai-batch", endpoint.Model, cost)));
                    done.Add(CallerId.Key(unit.Id));
                    progress.Add(outcome, cost);
                }
                output.Flush();
                part.Converted = true;
                Save(statePath, state);
                report?.Invoke($"{part.BatchId} {part.Status}: converted");
            }
            if (state.Parts.Any(p => !p.Converted)) await Task.Delay(_poll, cancel);
        }
        progress.Clock.Stop();
    }

    static string CustomId(JudgeUnit unit, string key) => key.Length == 0 ? unit.Id : unit.Id + "#" + key;

    static IEnumerable<JudgeUnit> UnitsOf(BatchPart part, Dictionary<string, JudgeUnit> byId)
    {
        var seen = new HashSet<string>();
        foreach (string line in File.ReadLines(part.RequestFile))
        {
            string custom = JsonDocument.Parse(line).RootElement.GetProperty("custom_id").GetString()!;
            int hash = custom.LastIndexOf('#');
            string id = byId.ContainsKey(custom) ? custom : custom[..hash];
            if (seen.Add(id) && byId.TryGetValue(id, out JudgeUnit? u)) yield return u;
        }
    }

    /// <summary>Request lines for the units, cut into files of at most the limits; a unit's calls stay in one file.</summary>
    List<BatchPart> WriteRequestFiles(IEnumerable<JudgeUnit> todo, string dir)
    {
        var parts = new List<BatchPart>();
        StreamWriter? w = null;
        int count = 0;
        long bytes = 0;
        void Close()
        {
            if (w is null) return;
            w.Dispose();
            parts[^1] = new BatchPart { RequestFile = parts[^1].RequestFile, Requests = count };
            w = null;
        }
        foreach (JudgeUnit unit in todo)
        {
            var lines = unit.Requests().Select(c => RequestLine(CustomId(unit, c.Key), c.Request)).ToList();
            long size = lines.Sum(l => Encoding.UTF8.GetByteCount(l) + 1);
            if (w is not null && (count + lines.Count > _limits.MaxRequests || bytes + size > _limits.MaxBytes)) Close();
            if (w is null)
            {
                string path = Path.Combine(dir, $"requests-{parts.Count:D4}.jsonl");
                w = new StreamWriter(path, false, new UTF8Encoding(false));
                parts.Add(new BatchPart { RequestFile = path });
                count = 0;
                bytes = 0;
            }
            foreach (string l in lines) w.Write(l + "\n");
            count += lines.Count;
            bytes += size;
        }
        Close();
        return parts;
    }

    string RequestLine(string customId, JudgeRequest r)
    {
        var body = new JsonObject
        {
            ["model"] = endpoint.Model,
            ["messages"] = new JsonArray(r.Messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
            ["max_tokens"] = r.MaxTokens,
            ["temperature"] = 0,
        };
        if (r.TopLogprobs > 0)
        {
            body["logprobs"] = true;
            body["top_logprobs"] = r.TopLogprobs;
        }
        return new JsonObject { ["custom_id"] = customId, ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = body }.ToJsonString();
    }

    /// <summary>custom_id → reply (a 200 body read by the SDK's own chat-completion model) or error text.</summary>
    static IEnumerable<(string, (JudgeReply?, string?))> ReadResults(BinaryData file)
    {
        foreach (string line in file.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonElement o;
            try
            {
                o = JsonDocument.Parse(line).RootElement;
            }
            catch (JsonException)
            {
                continue; // a torn line: its units are recorded as failed (no reply)
            }
            string id = o.GetProperty("custom_id").GetString()!;
            if (o.TryGetProperty("response", out var resp) && resp.ValueKind == JsonValueKind.Object
                && resp.GetProperty("status_code").GetInt32() == 200)
            {
                var completion = ModelReaderWriter.Read<ChatCompletion>(BinaryData.FromString(resp.GetProperty("body").GetRawText()))!;
                string text = string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
                var top = completion.ContentTokenLogProbabilities.FirstOrDefault()?.TopLogProbabilities
                    .Select(t => new TopLogprob(t.Token, t.LogProbability)).ToList();
                yield return (id, (new JudgeReply(text, top, completion.Usage?.InputTokenCount ?? 0, completion.Usage?.OutputTokenCount ?? 0), null));
            }
            else
            {
                string error = o.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object ? e.GetRawText()
                    : resp.ValueKind == JsonValueKind.Object ? $"HTTP {resp.GetProperty("status_code").GetInt32()}: {resp.GetProperty("body").GetRawText()}"
                    : "no response";
                yield return (id, (null, error));
            }
        }
    }

    static BatchState Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<BatchState>(File.ReadAllText(path), StateJson) ?? new BatchState();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a batch state file ({e.Message}); move it away to start the batch run afresh");
        }
    }

    static void Save(string path, BatchState state)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(state, StateJson));
        File.Move(tmp, path, overwrite: true);
    }
}
