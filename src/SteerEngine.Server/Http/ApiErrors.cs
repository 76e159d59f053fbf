using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SteerEngine.Generation;

namespace SteerEngine.Server.Http;

/// <summary>The one place an exception becomes an HTTP status and OpenAI's error object. The server never dies from a request.</summary>
public static class ApiErrors
{
    public sealed record ErrorBody(ErrorDetail Error);
    public sealed record ErrorDetail(string Message, string Type, string? Param, string? Code);

    public static (int Status, ErrorDetail Detail) Map(Exception e) => e switch
    {
        ApiException a => (a.Status, new ErrorDetail(a.Message, a.Type, a.Param, a.Code)),
        EngineBusyException => (429, new ErrorDetail(e.Message, "rate_limit_error", null, "queue_full")),
        BadHttpRequestException { StatusCode: 413 } => (413, new ErrorDetail("request body is larger than the server's limit", "invalid_request_error", null, "body_too_large")),
        BadHttpRequestException b => (b.StatusCode, new ErrorDetail(b.Message, "invalid_request_error", null, null)),
        JsonException j => (400, new ErrorDetail($"malformed JSON in the request body: {j.Message}", "invalid_request_error", null, "invalid_json")),
        ArgumentException => (400, new ErrorDetail(e.Message, "invalid_request_error", null, null)),
        _ => (500, new ErrorDetail($"internal error: {e.GetType().Name}: {e.Message}", "server_error", null, null)),
    };

    public static async Task Write(HttpContext context, Exception e)
    {
        var (status, detail) = Map(e);
        context.Response.StatusCode = status;
        if (status == 429) context.Response.Headers.RetryAfter = "1";
        await context.Response.WriteAsJsonAsync(new ErrorBody(detail), ServerJson.Options);
    }

    /// <summary>Middleware: any exception of an endpoint becomes an error response (if nothing was sent yet).</summary>
    public static async Task Catch(HttpContext context, RequestDelegate next)
    {
        try { await next(context); }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested) { }
        catch (Exception e)
        {
            if (context.Response.HasStarted)
            {
                // A stream already under way ends with an error event instead of a status.
                if (context.Response.ContentType == "text/event-stream" && !context.RequestAborted.IsCancellationRequested)
                    try { await context.Response.WriteAsync("data: " + ServerJson.Line(new ErrorBody(Map(e).Detail)) + "\n\n"); } catch (IOException) { }
                return;
            }
            context.Response.Clear();
            await Write(context, e);
        }
    }
}
