using Microsoft.AspNetCore.Http;

namespace SteerEngine.Server.Http;

/// <summary>Server-sent events as OpenAI sends them: <c>data: {json}</c> lines, then <c>data: [DONE]</c>.</summary>
public static class Sse
{
    public static async Task Start(HttpResponse response)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await response.StartAsync();
    }

    public static async Task Send<T>(HttpResponse response, T payload, CancellationToken cancel)
    {
        await response.WriteAsync("data: " + ServerJson.Line(payload) + "\n\n", cancel);
        await response.Body.FlushAsync(cancel);
    }

    public static async Task Done(HttpResponse response, CancellationToken cancel)
    {
        await response.WriteAsync("data: [DONE]\n\n", cancel);
        await response.Body.FlushAsync(cancel);
    }
}
