using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SteerEngine.Server.Batches;
using SteerEngine.Server.Serving;
using SteerEngine.Steering;

namespace SteerEngine.Server.Http;

/// <summary>The routes: HTTP in and out only; each endpoint hands its validated request to its serving class.</summary>
public static class Routes
{
    public sealed record Services(ServingStack Stack, FileStore Files, BatchRunner Batches, ServerOptions Options)
    {
        public ModelCatalog Catalog => Stack.Catalog;
        public VectorLibrary Vectors => Stack.Vectors;
        public ChatCompletionService Chat => Stack.Chat;
        public CompletionService Completions => Stack.Completions;
        public ServerMetrics Metrics => Stack.Metrics;
    }

    public static void Map(WebApplication app, Services s)
    {
        app.Use(async (context, next) =>
        {
            await ApiErrors.Catch(context, next);
            string route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
            s.Metrics.Request(route, context.Response.StatusCode);
        });
        app.Use((context, next) => Authorize(context, next, s.Options.ApiKey));

        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/metrics", () => Results.Text(s.Metrics.Render(), "text/plain; version=0.0.4"));

        RouteGroupBuilder v1 = app.MapGroup("/v1");
        v1.MapGet("/models", () => Json(new ListOf<ModelCard>("list",
            s.Catalog.Models.Select(m => new ModelCard(m.Name, "model", m.Created, "steer"))
                .Concat(s.Catalog.Presets.Select(p => new ModelCard(p.Alias, "model", p.Model.Created, "steer"))).ToList())));

        v1.MapPost("/chat/completions", async Task<IResult> (HttpContext context) =>
        {
            var request = ChatCompletionRequest.Read(await ReadJson(context), s.Options.Limits);
            if (request.Parameters.Stream) { await s.Chat.Stream(request, context.Response, context.RequestAborted); return Results.Empty; }
            return Json(await s.Chat.Create(request, context.RequestAborted));
        });
        v1.MapPost("/completions", async Task<IResult> (HttpContext context) =>
        {
            var request = CompletionRequest.Read(await ReadJson(context), s.Options.Limits);
            if (request.Parameters.Stream) { await s.Completions.Stream(request, context.Response, context.RequestAborted); return Results.Empty; }
            return Json(await s.Completions.Create(request, context.RequestAborted));
        });

        v1.MapGet("/steering/vectors", () => Json(new ListOf<VectorLibrary.Entry>("list", s.Vectors.List())));
        v1.MapPost("/steering/vectors", async Task<IResult> (HttpContext context) => Json(AddVector(await ReadJson(context), s.Vectors)));

        v1.MapPost("/files", async Task<IResult> (HttpContext context) =>
        {
            if (!context.Request.HasFormContentType) throw ApiException.BadRequest("upload files as multipart/form-data with 'file' and 'purpose'");
            IFormCollection form = await context.Request.ReadFormAsync(context.RequestAborted);
            string purpose = form["purpose"].ToString();
            if (purpose != "batch") throw ApiException.BadRequest($"'purpose' is '{purpose}'; only 'batch' is supported", "purpose");
            IFormFile file = form.Files.GetFile("file") ?? throw ApiException.BadRequest("'file' is required", "file");
            await using Stream content = file.OpenReadStream();
            return Json(await s.Files.Save(content, file.FileName, purpose, context.RequestAborted));
        });
        v1.MapGet("/files/{id}", (string id) => Json(s.Files.Get(id)));
        v1.MapGet("/files/{id}/content", (string id) => Results.File(s.Files.ContentPath(id), "application/jsonl"));

        v1.MapPost("/batches", async Task<IResult> (HttpContext context) =>
        {
            var f = RequestFields.Of(await ReadJson(context), "the request body");
            string input = f.RequiredString("input_file_id");
            string endpoint = f.RequiredString("endpoint");
            string window = f.String("completion_window") ?? "24h";
            var metadata = f.Get("metadata") is { } m ? JsonSerializer.Deserialize<Dictionary<string, string>>(m) : null;
            f.RejectUnread();
            return Json(s.Batches.Create(input, endpoint, window, metadata));
        });
        v1.MapGet("/batches/{id}", (string id) => Json(s.Batches.Get(id)));
        v1.MapGet("/batches", (int? limit) => Json(new ListOf<BatchObject>("list", s.Batches.List().Take(Math.Clamp(limit ?? 20, 1, 100)).ToList())));
        v1.MapPost("/batches/{id}/cancel", (string id) => Json(s.Batches.Cancel(id)));
        StaticPage.Map(app);
        app.MapFallback(Task (HttpContext _) => throw ApiException.NotFound("no such route"));
    }

    static IResult Json<T>(T value) => Results.Json(value, ServerJson.Options);

    static async Task<JsonElement> ReadJson(HttpContext context)
    {
        using JsonDocument doc = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
        return doc.RootElement.Clone();
    }

    /// <summary>With an API key, every /v1 route needs <c>Authorization: Bearer KEY</c>.</summary>
    static async Task Authorize(HttpContext context, Func<Task> next, string? key)
    {
        if (key is not null && context.Request.Path.StartsWithSegments("/v1")
            && context.Request.Headers.Authorization.ToString() != "Bearer " + key)
        {
            context.Response.StatusCode = 401;
            await context.Response.WriteAsJsonAsync(new ApiErrors.ErrorBody(new ApiErrors.ErrorDetail(
                "missing or wrong API key: send 'Authorization: Bearer KEY'", "invalid_request_error", null, "invalid_api_key")), ServerJson.Options);
            return;
        }
        await next();
    }

    /// <summary>POST /v1/steering/vectors: <c>{"name", "vector": [floats] | "vector_base64": f32}</c>, held in memory.</summary>
    static VectorLibrary.Entry AddVector(JsonElement body, VectorLibrary vectors)
    {
        var f = RequestFields.Of(body, "the request body");
        string name = f.RequiredString("name");
        JsonElement? list = f.Get("vector");
        string? base64 = f.String("vector_base64");
        f.RejectUnread();
        if (list is null == base64 is null) throw ApiException.BadRequest("give exactly one of 'vector' and 'vector_base64'", "vector");
        if (list is { ValueKind: not JsonValueKind.Array }) throw f.Wrong("vector", list.Value, "a list of numbers");
        float[] values = base64 is not null ? SteeringSpec.FromBase64(base64, "vector_base64") : SteeringSpec.FromList(list!.Value, "vector");
        if (values.Length == 0 || values.Any(v => !float.IsFinite(v))) throw ApiException.BadRequest("'vector' must be a non-empty list of finite numbers", "vector");
        try { VectorLibrary.CheckName(name); }
        catch (ArgumentException e) { throw ApiException.BadRequest(e.Message, "name"); }
        vectors.Add(name, SteeringVector.Direction(values, $"uploaded '{name}'"));
        return vectors.List().First(e => e.Name == name);
    }
}
