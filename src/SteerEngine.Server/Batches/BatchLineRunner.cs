using System.Text;
using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Server.Http;
using SteerEngine.Server.Serving;

namespace SteerEngine.Server.Batches;

/// <summary>One output line: <c>{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}</c>.</summary>
public sealed record BatchResponse(int StatusCode, string RequestId, object Body);
public sealed record BatchOutputLine(string Id, string CustomId, BatchResponse? Response, ApiErrors.ErrorDetail? Error);

/// <summary>
/// Runs one batch line through the same serving classes as the HTTP routes (no HTTP in between). A line
/// without a seed is seeded from its custom_id, so a resumed job and <c>steer run-batch</c> sample alike.
/// </summary>
public sealed class BatchLineRunner(ChatCompletionService chat, CompletionService completions)
{
    public async Task<BatchOutputLine> Run(BatchLine line, ServerLimits limits, CancellationToken cancel)
    {
        string requestId = Ids.New("req", '_');
        string id = Ids.New("batch_req", '_');
        ulong seed = SplitMix64.Hash(Fnv(line.CustomId));
        try
        {
            if (line.Body.TryGetProperty("stream", out JsonElement s) && s.ValueKind == JsonValueKind.True)
                throw ApiException.BadRequest("'stream' is not allowed in a batch", "stream");
            object body = line.Url == "/v1/chat/completions"
                ? await chat.Create(ChatCompletionRequest.Read(line.Body, limits), cancel, seed)
                : await completions.Create(CompletionRequest.Read(line.Body, limits), cancel, seed);
            return new BatchOutputLine(id, line.CustomId, new BatchResponse(200, requestId, body), null);
        }
        catch (Exception e) when (e is not OperationCanceledException and not EngineBusyException)
        {
            var (status, detail) = ApiErrors.Map(e);
            return new BatchOutputLine(id, line.CustomId, new BatchResponse(status, requestId, new ApiErrors.ErrorBody(detail)), null);
        }
    }

    /// <summary>FNV-1a of the UTF-8 bytes: a stable hash (string.GetHashCode changes per process).</summary>
    static ulong Fnv(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(text)) h = (h ^ b) * 1099511628211UL;
        return h;
    }
}
