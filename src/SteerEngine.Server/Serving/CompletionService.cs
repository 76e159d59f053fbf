using Microsoft.AspNetCore.Http;
using SteerEngine.Generation;
using SteerEngine.Server.Http;
using SteerEngine.Tokenization;

namespace SteerEngine.Server.Serving;

/// <summary>
/// Text completions: raw text (with BOS) or token-id prompts, n choices each. <c>echo</c> with
/// <c>logprobs</c> scores the prompt's tokens too, so <c>max_tokens: 0</c> is perplexity scoring.
/// </summary>
public sealed class CompletionService(ModelCatalog catalog, VectorLibrary vectors, ServerLimits limits, ServerMetrics metrics)
{
    sealed record Prepared(ServedModel Model, string Name, IReadOnlyList<int[]> Prompts, IReadOnlyList<GenerationRequest> Requests);

    Prepared Prepare(CompletionRequest request, ulong? defaultSeed)
    {
        GenerationParameters p = request.Parameters;
        var (model, preset) = catalog.Resolve(p.Model);
        var steering = EngineRequests.Steering(p, model, preset, vectors);
        TextTokenizer tokenizer = model.Lm.Tokenizer;
        var prompts = request.Prompts.Select(x => x.Tokens ?? tokenizer.Encode(x.Text!, addBos: true)).ToList();
        ulong seed = EngineRequests.Seed(p, defaultSeed);
        bool scorePrompt = request.Echo && p.Logprobs;
        var requests = (from prompt in prompts
                        from c in Enumerable.Range(0, p.N)
                        select EngineRequests.Build(model, prompt, p, steering, c, seed, limits, scorePrompt)).ToList();
        return new Prepared(model, p.Model, prompts, requests);
    }

    public async Task<TextCompletion> Create(CompletionRequest request, CancellationToken cancel, ulong? defaultSeed = null)
    {
        Prepared job = Prepare(request, defaultSeed);
        using var run = new ChoiceRun(job.Model.Engine, job.Requests, stream: false, cancel);
        GenerationResult[] results = await run.AllAsync();
        TextTokenizer tokenizer = job.Model.Lm.Tokenizer;
        int n = request.Parameters.N;
        var choices = results.Select((r, i) =>
        {
            int[] prompt = job.Prompts[i / n];
            string promptText = request.Echo ? request.Prompts[i / n].Text ?? tokenizer.Decode(prompt) : "";
            TextLogprobs? lp = request.Parameters.Logprobs ? Logprobs(tokenizer, request.Echo ? prompt : null, r) : null;
            return new TextChoice(promptText + (r.Text ?? ""), i, lp, r.FinishReason);
        }).ToList();
        int promptTokens = job.Prompts.Sum(x => x.Length), completion = results.Sum(r => r.Tokens.Length);
        metrics.Tokens(promptTokens, completion);
        return new TextCompletion(Ids.New("cmpl"), "text_completion", Ids.Now(), job.Name, choices, new Usage(promptTokens, completion, promptTokens + completion));
    }

    /// <summary>The legacy parallel lists: the echoed prompt's tokens first (the first has no log-prob), then the generated ones.</summary>
    static TextLogprobs Logprobs(TextTokenizer t, int[]? echoed, GenerationResult r)
    {
        var tokens = new List<string>();
        var logprobs = new List<float?>();
        var tops = new List<Dictionary<string, float>?>();
        var offsets = new List<int>();
        int offset = 0;
        void Add(int id, float? lp, TokenLogprob[]? top)
        {
            string text = LogprobFormat.Text(t, id);
            tokens.Add(text);
            logprobs.Add(lp);
            tops.Add(top is null ? null : LogprobFormat.TopMap(t, top));
            offsets.Add(offset);
            offset += t.Decode([id], skipSpecialTokens: true).Length;   // special tokens (BOS) are not in the returned text
        }
        if (echoed is not null)
            for (int i = 0; i < echoed.Length; i++)
                Add(echoed[i], i == 0 ? null : r.PromptLogprobs![i - 1], i == 0 ? null : r.PromptTopLogprobs?[i - 1]);
        for (int i = 0; i < r.Tokens.Length; i++) Add(r.Tokens[i], r.TokenLogprobs![i], r.TopLogprobs?[i]);
        return new TextLogprobs(tokens, logprobs, tops, offsets);
    }

    public async Task Stream(CompletionRequest request, HttpResponse response, CancellationToken cancel)
    {
        Prepared job = Prepare(request, null);
        using var run = new ChoiceRun(job.Model.Engine, job.Requests, stream: true, cancel);
        TextTokenizer tokenizer = job.Model.Lm.Tokenizer;
        string id = Ids.New("cmpl");
        long created = Ids.Now();
        TextCompletion Chunk(int choice, string text, TextLogprobs? lp, string? finish) =>
            new(id, "text_completion", created, job.Name, [new TextChoice(text, choice, lp, finish)], null);

        await Sse.Start(response);
        var streamers = job.Requests.Select(_ => new TextStreamer(tokenizer, request.Parameters.Stop)).ToArray();
        int completion = 0;
        await foreach (ChoiceEvent e in run.Events(cancel))
        {
            if (e.Token is GeneratedToken t)
            {
                TextLogprobs? lp = request.Parameters.Logprobs
                    ? new([LogprobFormat.Text(tokenizer, t.Token)], [t.Logprob], [t.TopLogprobs is null ? null : LogprobFormat.TopMap(tokenizer, t.TopLogprobs)], [0])
                    : null;
                string delta = streamers[e.Choice].Add(t.Token);
                await Sse.Send(response, Chunk(e.Choice, delta, lp, null), cancel);
            }
            else if (e.Result is GenerationResult r)
            {
                completion += r.Tokens.Length;
                await Sse.Send(response, Chunk(e.Choice, streamers[e.Choice].Finish(r.Text ?? ""), null, r.FinishReason), cancel);
            }
        }
        int promptTokens = job.Prompts.Sum(x => x.Length);
        metrics.Tokens(promptTokens, completion);
        if (request.Parameters.IncludeUsage)
            await Sse.Send(response, new TextCompletion(id, "text_completion", created, job.Name, [], new Usage(promptTokens, completion, promptTokens + completion)), cancel);
        await Sse.Done(response, cancel);
    }
}
