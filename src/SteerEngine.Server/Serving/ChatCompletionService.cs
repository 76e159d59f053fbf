using Microsoft.AspNetCore.Http;
using SteerEngine.Generation;
using SteerEngine.Server.Http;

namespace SteerEngine.Server.Serving;

/// <summary>Chat completions: messages through the model's chat template into the engine, results back in OpenAI's shapes.</summary>
public sealed class ChatCompletionService(ModelCatalog catalog, VectorLibrary vectors, ServerLimits limits, ServerMetrics metrics)
{
    sealed record Prepared(ServedModel Model, string Name, int[] Prompt, IReadOnlyList<GenerationRequest> Requests);

    Prepared Prepare(ChatCompletionRequest request, ulong? defaultSeed)
    {
        GenerationParameters p = request.Parameters;
        var (model, preset) = catalog.Resolve(p.Model);
        var steering = EngineRequests.Steering(p, model, preset, vectors);
        string text = model.Lm.Template.Render(request.Messages, addGenerationPrompt: true,
            new Dictionary<string, object?> { ["date_string"] = Model.LanguageModel.DefaultDateString });
        int[] prompt = model.Lm.Tokenizer.Encode(text, addBos: false);
        ulong seed = EngineRequests.Seed(p, defaultSeed);
        ProjectionMonitor? monitor = MonitorSpec.Parse(request.Monitor, vectors, model.Lm.Config);
        var requests = Enumerable.Range(0, p.N)
            .Select(c => EngineRequests.Build(model, prompt, p, steering, c, seed, limits) with { Monitors = monitor is null ? null : [monitor] }).ToList();
        return new Prepared(model, p.Model, prompt, requests);
    }

    public async Task<ChatCompletion> Create(ChatCompletionRequest request, CancellationToken cancel, ulong? defaultSeed = null)
    {
        Prepared job = Prepare(request, defaultSeed);
        using var run = new ChoiceRun(job.Model.Engine, job.Requests, stream: false, cancel);
        GenerationResult[] results = await run.AllAsync();
        var tokenizer = job.Model.Lm.Tokenizer;
        var choices = results.Select((r, i) => new ChatChoice(i, new AssistantMessage("assistant", r.Text ?? ""),
            request.Parameters.Logprobs ? LogprobFormat.Chat(tokenizer, r) : null, r.FinishReason, r.Projections?[0])).ToList();
        int completion = results.Sum(r => r.Tokens.Length);
        metrics.Tokens(job.Prompt.Length, completion);
        return new ChatCompletion(Ids.New("chatcmpl"), "chat.completion", Ids.Now(), job.Name, choices, new Usage(job.Prompt.Length, completion, job.Prompt.Length + completion));
    }

    public async Task Stream(ChatCompletionRequest request, HttpResponse response, CancellationToken cancel)
    {
        Prepared job = Prepare(request, null);
        using var run = new ChoiceRun(job.Model.Engine, job.Requests, stream: true, cancel);
        var tokenizer = job.Model.Lm.Tokenizer;
        string id = Ids.New("chatcmpl");
        long created = Ids.Now();
        ChatCompletionChunk Chunk(int choice, ChatDelta delta, ChatLogprobs? lp = null, string? finish = null, float[]? projections = null) =>
            new(id, "chat.completion.chunk", created, job.Name, [new ChatChunkChoice(choice, delta, lp, finish, projections)], null);

        await Sse.Start(response);
        var streamers = job.Requests.Select(_ => new TextStreamer(tokenizer, request.Parameters.Stop)).ToArray();
        for (int c = 0; c < streamers.Length; c++) await Sse.Send(response, Chunk(c, new ChatDelta("assistant", "")), cancel);
        int completion = 0;
        await foreach (ChoiceEvent e in run.Events(cancel))
        {
            if (e.Token is GeneratedToken t)
            {
                ChatLogprobs? lp = request.Parameters.Logprobs ? new([LogprobFormat.Entry(tokenizer, t.Token, t.Logprob ?? 0, t.TopLogprobs)]) : null;
                string delta = streamers[e.Choice].Add(t.Token);
                await Sse.Send(response, Chunk(e.Choice, new ChatDelta(null, delta), lp), cancel);
            }
            else if (e.Result is GenerationResult r)
            {
                completion += r.Tokens.Length;
                string rest = streamers[e.Choice].Finish(r.Text ?? "");
                await Sse.Send(response, Chunk(e.Choice, new ChatDelta(null, rest.Length > 0 ? rest : null), null, r.FinishReason, r.Projections?[0]), cancel);
            }
        }
        metrics.Tokens(job.Prompt.Length, completion);
        if (request.Parameters.IncludeUsage)
            await Sse.Send(response, new ChatCompletionChunk(id, "chat.completion.chunk", created, job.Name, [],
                new Usage(job.Prompt.Length, completion, job.Prompt.Length + completion)), cancel);
        await Sse.Done(response, cancel);
    }
}
