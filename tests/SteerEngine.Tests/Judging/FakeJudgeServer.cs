using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SteerEngine.Tests.Judging;

/// <summary>What the fake server does with one request.</summary>
public abstract record FakeReply
{
    /// <summary>A normal reply: the text, and the top log-probs of its first token (token, logprob).</summary>
    public sealed record Text(string Content, (string Token, double Logprob)[]? Top = null) : FakeReply;
    public sealed record Status(int Code, string? RetryAfter = null) : FakeReply;
    /// <summary>Waits this long before answering normally (past the client's time-out).</summary>
    public sealed record Hang(TimeSpan Delay, string Content) : FakeReply;
    /// <summary>Headers promise more bytes than come; the connection is then cut mid-body.</summary>
    public sealed record Torn : FakeReply;
}

/// <summary>
/// A judge API on 127.0.0.1 (a free port) speaking OpenAI's chat completions and Anthropic's
/// messages wire formats, and OpenAI's files and batches for the Batch API, with faults injected
/// by a script: the script sees the user prompt and how many times that prompt was asked before.
/// Every request is counted. Stops on Dispose.
/// </summary>
public sealed class FakeJudgeServer : LoopbackHttpServer
{
    readonly Func<string, int, FakeReply> _script;
    readonly ConcurrentDictionary<string, int> _asked = new();
    readonly ConcurrentDictionary<string, byte[]> _files = new();
    readonly ConcurrentDictionary<string, JsonObject> _batches = new();
    int _requests, _nextId;

    public FakeJudgeServer(Func<string, int, FakeReply> script) => _script = script;

    public int Requests => _requests;
    public int AskedCount(string prompt) => _asked.GetValueOrDefault(prompt);
    public IReadOnlyDictionary<string, int> Asked => _asked;
    /// <summary>Batches created so far (the Batch API tests check nothing is submitted twice).</summary>
    public int BatchesCreated => _batches.Count;
    /// <summary>Status a new batch reports until the test releases it.</summary>
    public volatile bool HoldBatches;

    protected override async Task Handle(HttpListenerContext ctx)
    {
        Interlocked.Increment(ref _requests);
        try
        {
            string path = ctx.Request.Url!.AbsolutePath;
            byte[] body;
            using (var ms = new MemoryStream())
            {
                await ctx.Request.InputStream.CopyToAsync(ms);
                body = ms.ToArray();
            }
            if (path.EndsWith("/chat/completions") || path.EndsWith("/messages"))
            {
                bool anthropic = path.EndsWith("/messages");
                var request = JsonNode.Parse(body)!.AsObject();
                string prompt = LastUser(request);
                int n = _asked.AddOrUpdate(prompt, 1, (_, v) => v + 1) - 1;
                await Respond(ctx, _script(prompt, n), request, anthropic);
            }
            else if (path.EndsWith("/files") && ctx.Request.HttpMethod == "POST") await UploadFile(ctx, body);
            else if (path.Contains("/files/") && path.EndsWith("/content")) await Write(ctx, 200, _files[path.Split('/')[^2]], "application/octet-stream");
            else if (path.EndsWith("/batches") && ctx.Request.HttpMethod == "POST") await CreateBatch(ctx, body);
            else if (path.Contains("/batches/")) await Json(ctx, 200, Poll(path.Split('/')[^1]));
            else await Json(ctx, 404, new JsonObject { ["error"] = new JsonObject { ["message"] = "no route " + path } });
        }
        catch (Exception) when (Stop.IsCancellationRequested)
        {
        }
        catch (HttpListenerException)
        {
        }
        catch (Exception e)
        {
            // A bug in the fake must fail the test, not hang it until the client times out.
            try { await Json(ctx, 599, new JsonObject { ["error"] = new JsonObject { ["message"] = "fake server: " + e.Message } }); } catch (Exception) { }
        }
    }

    static string LastUser(JsonObject request)
    {
        var messages = request["messages"]!.AsArray();
        JsonNode content = messages.Last(m => (string?)m!["role"] == "user")!["content"]!;
        return content is JsonValue v ? v.GetValue<string>() : string.Concat(content.AsArray().Select(p => (string?)p!["text"]));
    }

    async Task Respond(HttpListenerContext ctx, FakeReply reply, JsonObject request, bool anthropic)
    {
        switch (reply)
        {
            case FakeReply.Status s:
                if (s.RetryAfter is not null) ctx.Response.Headers["Retry-After"] = s.RetryAfter;
                await Json(ctx, s.Code, new JsonObject { ["error"] = new JsonObject { ["message"] = $"injected {s.Code}", ["type"] = "server_error" } });
                return;
            case FakeReply.Torn:
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "application/json";
                ctx.Response.ContentLength64 = 400;
                byte[] half = Encoding.UTF8.GetBytes("{\"id\":\"chatcmpl-torn\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"mess");
                await ctx.Response.OutputStream.WriteAsync(half);
                await ctx.Response.OutputStream.FlushAsync();
                ctx.Response.Abort();
                return;
            case FakeReply.Hang h:
                try
                {
                    await Task.Delay(h.Delay, Stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                await Json(ctx, 200, anthropic ? AnthropicMessage(h.Content) : ChatCompletion(h.Content, null, request));
                return;
            case FakeReply.Text t:
                await Json(ctx, 200, anthropic ? AnthropicMessage(t.Content) : ChatCompletion(t.Content, t.Top, request));
                return;
        }
    }

    public static JsonObject ChatCompletion(string content, (string Token, double Logprob)[]? top, JsonObject request)
    {
        var choice = new JsonObject
        {
            ["index"] = 0,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content },
            ["finish_reason"] = "stop",
        };
        if (request["logprobs"]?.GetValue<bool>() == true)
        {
            int k = request["top_logprobs"]?.GetValue<int>() ?? 0;
            var tops = new JsonArray();
            foreach (var (tok, lp) in (top ?? [(content, 0.0)]).Take(k))
                tops.Add(new JsonObject { ["token"] = tok, ["logprob"] = lp, ["bytes"] = new JsonArray(Encoding.UTF8.GetBytes(tok).Select(b => (JsonNode)(int)b).ToArray()) });
            string first = top?.FirstOrDefault().Token ?? content;
            choice["logprobs"] = new JsonObject
            {
                ["content"] = new JsonArray(new JsonObject { ["token"] = first, ["logprob"] = top?.FirstOrDefault().Logprob ?? 0.0, ["bytes"] = new JsonArray(), ["top_logprobs"] = tops }),
            };
        }
        return new JsonObject
        {
            ["id"] = "chatcmpl-fake", ["object"] = "chat.completion", ["created"] = 0, ["model"] = (string?)request["model"] ?? "fake",
            ["choices"] = new JsonArray(choice),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 100, ["completion_tokens"] = 2, ["total_tokens"] = 102 },
        };
    }

    static JsonObject AnthropicMessage(string content) => new()
    {
        ["id"] = "msg_fake", ["type"] = "message", ["role"] = "assistant", ["model"] = "fake",
        ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = content }),
        ["stop_reason"] = "end_turn", ["stop_sequence"] = null,
        ["usage"] = new JsonObject { ["input_tokens"] = 100, ["output_tokens"] = 2 },
    };

    // ---- OpenAI files and batches: the batch is run through the same script when first polled after release.

    async Task UploadFile(HttpListenerContext ctx, byte[] body)
    {
        // multipart/form-data: keep the bytes of the part named "file".
        string text = Encoding.UTF8.GetString(body);
        int name = System.Text.RegularExpressions.Regex.Match(text, "name=\"?file\"?[;\r]").Index;
        int start = text.IndexOf("\r\n\r\n", name, StringComparison.Ordinal) + 4;
        string boundary = text[..text.IndexOf("\r\n", StringComparison.Ordinal)];
        int end = text.IndexOf("\r\n" + boundary, start, StringComparison.Ordinal);
        string id = "file-" + Interlocked.Increment(ref _nextId);
        _files[id] = Encoding.UTF8.GetBytes(text[start..end]);
        await Json(ctx, 200, new JsonObject { ["id"] = id, ["object"] = "file", ["bytes"] = end - start, ["created_at"] = 0, ["filename"] = "batch.jsonl", ["purpose"] = "batch", ["status"] = "processed" });
    }

    async Task CreateBatch(HttpListenerContext ctx, byte[] body)
    {
        var request = JsonNode.Parse(body)!.AsObject();
        string id = "batch_" + Interlocked.Increment(ref _nextId);
        var batch = new JsonObject
        {
            ["id"] = id, ["object"] = "batch", ["endpoint"] = (string?)request["endpoint"], ["input_file_id"] = (string?)request["input_file_id"],
            ["completion_window"] = "24h", ["status"] = "in_progress", ["created_at"] = 0, ["output_file_id"] = null, ["error_file_id"] = null,
        };
        _batches[id] = batch;
        await Json(ctx, 200, batch);
    }

    JsonObject Poll(string id)
    {
        var batch = _batches[id];
        lock (batch)
        {
            if ((string?)batch["status"] == "in_progress" && !HoldBatches)
            {
                var output = new StringBuilder();
                string input = Encoding.UTF8.GetString(_files[(string)batch["input_file_id"]!]);
                foreach (string line in input.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    var req = JsonNode.Parse(line)!.AsObject();
                    var body = req["body"]!.AsObject();
                    string prompt = LastUser(body);
                    int n = _asked.AddOrUpdate(prompt, 1, (_, v) => v + 1) - 1;
                    JsonObject result = _script(prompt, n) switch
                    {
                        FakeReply.Text t => new JsonObject { ["status_code"] = 200, ["body"] = ChatCompletion(t.Content, t.Top, body) },
                        FakeReply.Status s => new JsonObject { ["status_code"] = s.Code, ["body"] = new JsonObject { ["error"] = new JsonObject { ["message"] = "injected" } } },
                        _ => new JsonObject { ["status_code"] = 500, ["body"] = new JsonObject { ["error"] = new JsonObject { ["message"] = "injected" } } },
                    };
                    output.Append(new JsonObject { ["id"] = "r", ["custom_id"] = (string?)req["custom_id"], ["response"] = result, ["error"] = null }.ToJsonString()).Append('\n');
                }
                string fileId = "file-" + Interlocked.Increment(ref _nextId);
                _files[fileId] = Encoding.UTF8.GetBytes(output.ToString());
                batch["status"] = "completed";
                batch["output_file_id"] = fileId;
            }
            return JsonNode.Parse(batch.ToJsonString())!.AsObject();
        }
    }

    static Task Json(HttpListenerContext ctx, int status, JsonObject o) => Write(ctx, status, Encoding.UTF8.GetBytes(o.ToJsonString()), "application/json");

    static async Task Write(HttpListenerContext ctx, int status, byte[] bytes, string type)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = type;
        ctx.Response.ContentLength64 = bytes.Length;
        await ctx.Response.OutputStream.WriteAsync(bytes);
        ctx.Response.Close();
    }
}
