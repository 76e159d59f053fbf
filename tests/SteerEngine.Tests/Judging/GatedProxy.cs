using System.Net;

namespace SteerEngine.Tests.Judging;

/// <summary>
/// A forwarder on 127.0.0.1 (a free port) in front of a real server: every request goes through
/// unchanged, except that the requests the test gates (by method and path) wait until the gate
/// lets them pass. This puts a client that is killed mid-run at a chosen point of its work,
/// whatever the machine's speed: the client is blocked on a held request when it is killed.
/// Requests are counted per route. Stops on Dispose.
/// </summary>
public sealed class GatedProxy : LoopbackHttpServer
{
    readonly HttpClient _target;
    readonly Func<string, string, bool> _gated;
    readonly object _lock = new();
    readonly Dictionary<string, int> _seen = [];
    int _allowance, _waiting;

    /// <param name="target">the real server's base address (e.g. http://127.0.0.1:PORT/)</param>
    /// <param name="gated">(method, path) → whether the gate applies to the request</param>
    /// <param name="allowance">gated requests that pass before the gate holds them</param>
    public GatedProxy(Uri target, Func<string, string, bool> gated, int allowance)
    {
        _target = new HttpClient { BaseAddress = target, Timeout = TimeSpan.FromMinutes(2) };
        _gated = gated;
        _allowance = allowance;
    }

    /// <summary>Gated requests held right now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Lets <paramref name="count"/> more gated requests pass (int.MaxValue: open for good).</summary>
    public void Allow(int count)
    {
        lock (_lock) _allowance = count;
    }

    /// <summary>Requests seen with this method whose path ends with <paramref name="pathEnd"/>.</summary>
    public int Seen(string method, string pathEnd)
    {
        lock (_lock) return _seen.Where(kv => kv.Key.StartsWith(method + " ") && kv.Key.EndsWith(pathEnd)).Sum(kv => kv.Value);
    }

    protected override async Task Handle(HttpListenerContext ctx)
    {
        try
        {
            string method = ctx.Request.HttpMethod, path = ctx.Request.Url!.AbsolutePath;
            lock (_lock) _seen[$"{method} {path}"] = _seen.GetValueOrDefault($"{method} {path}") + 1;
            if (_gated(method, path)) await Turn();
            using var ms = new MemoryStream();
            await ctx.Request.InputStream.CopyToAsync(ms, Stop.Token);
            using var request = new HttpRequestMessage(new HttpMethod(method), ctx.Request.Url.PathAndQuery.TrimStart('/'));
            if (ms.Length > 0 || method is "POST" or "PUT")
            {
                request.Content = new ByteArrayContent(ms.ToArray());
                if (ctx.Request.ContentType is { } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);
            }
            if (ctx.Request.Headers["Authorization"] is { } auth) request.Headers.TryAddWithoutValidation("Authorization", auth);
            using HttpResponseMessage response = await _target.SendAsync(request, Stop.Token);
            byte[] body = await response.Content.ReadAsByteArrayAsync(Stop.Token);
            ctx.Response.StatusCode = (int)response.StatusCode;
            if (response.Content.Headers.ContentType is { } ct) ctx.Response.ContentType = ct.ToString();
            ctx.Response.ContentLength64 = body.Length;
            await ctx.Response.OutputStream.WriteAsync(body, Stop.Token);
            ctx.Response.Close();
        }
        catch (Exception) when (Stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is HttpListenerException or IOException)
        {
            // The client was killed while its request was held or in flight.
        }
    }

    async Task Turn()
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            while (true)
            {
                lock (_lock)
                    if (_allowance > 0)
                    {
                        if (_allowance != int.MaxValue) _allowance--;
                        return;
                    }
                await Task.Delay(10, Stop.Token);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _target.Dispose();
    }
}
