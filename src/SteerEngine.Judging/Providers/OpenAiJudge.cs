using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Chat;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Scoring;

namespace SteerEngine.Judging.Providers;

/// <summary>Where an OpenAI-compatible judge lives: base URL (ending in /v1), model, API key, and the time-out of one request.</summary>
public sealed record OpenAiEndpoint(Uri BaseUrl, string Model, string ApiKey, TimeSpan RequestTimeout)
{
    public OpenAIClientOptions ClientOptions() => new()
    {
        Endpoint = BaseUrl,
        // Retries belong to the judge's own pipeline (RetryingJudge), which sees every attempt.
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        NetworkTimeout = RequestTimeout,
    };
}

/// <summary>
/// Chat completions through the official OpenAI .NET SDK, against OpenAI or any compatible server
/// (vLLM, `steer serve`): temperature 0, and for the weighted scorer logprobs with top_logprobs.
/// One attempt per call; SDK errors become <see cref="JudgeCallException"/> with the status and Retry-After.
/// </summary>
public sealed class OpenAiJudge(OpenAiEndpoint endpoint) : IJudgeProvider
{
    readonly ChatClient _client = new(endpoint.Model, new ApiKeyCredential(endpoint.ApiKey), endpoint.ClientOptions());

    public string Name => "openai";
    public string Model => endpoint.Model;
    public bool SupportsLogprobs => true;

    public async Task<JudgeReply> CompleteAsync(JudgeRequest request, CancellationToken cancel)
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = request.MaxTokens, Temperature = 0f };
        if (request.TopLogprobs > 0)
        {
            options.IncludeLogProbabilities = true;
            options.TopLogProbabilityCount = request.TopLogprobs;
        }
        ChatCompletion completion;
        try
        {
            completion = (await _client.CompleteChatAsync(request.Messages.Select(ToMessage), options, cancel).ConfigureAwait(false)).Value;
        }
        catch (ClientResultException e)
        {
            throw Translate(e);
        }
        string text = string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
        IReadOnlyList<TopLogprob>? top = null;
        if (request.TopLogprobs > 0)
        {
            var first = completion.ContentTokenLogProbabilities.FirstOrDefault()
                        ?? throw new JudgeCallException("the reply has no logprobs although top_logprobs was asked for", 0, transient: false);
            top = first.TopLogProbabilities.Select(t => new TopLogprob(t.Token, t.LogProbability)).ToList();
        }
        return new JudgeReply(text, top, completion.Usage?.InputTokenCount ?? 0, completion.Usage?.OutputTokenCount ?? 0);
    }

    internal static ChatMessage ToMessage(ChatTurn t) => t.Role switch
    {
        "system" => new SystemChatMessage(t.Content),
        "assistant" => new AssistantChatMessage(t.Content),
        _ => new UserChatMessage(t.Content),
    };

    internal static JudgeCallException Translate(ClientResultException e)
    {
        PipelineResponse? raw = e.GetRawResponse();
        string? retryAfter = null;
        raw?.Headers.TryGetValue("Retry-After", out retryAfter);
        int status = e.Status;
        return new JudgeCallException($"HTTP {status}: {e.Message.Split('\n')[0]}", status, JudgeCallException.IsTransientStatus(status),
            JudgeCallException.ParseRetryAfter(retryAfter, DateTimeOffset.UtcNow), e);
    }

    public void Dispose() { }
}
