using Anthropic;
using Anthropic.Models.Messages;
using SteerEngine.Judging.Rubrics;

namespace SteerEngine.Judging.Providers;

/// <summary>
/// Claude through Anthropic's official .NET SDK (the Messages API): rating and pairwise rubrics
/// (the API gives no log-probs, so no weighted scorer). One attempt per call: the SDK's own
/// retries are off, and a status handler under its HTTP client turns an error response into a
/// <see cref="JudgeCallException"/> with the status and Retry-After before the SDK reads it.
/// </summary>
public sealed class AnthropicJudge : IJudgeProvider
{
    readonly AnthropicClient _client;
    readonly HttpClient _http;

    public AnthropicJudge(Uri baseUrl, string model, string apiKey, TimeSpan timeout)
    {
        Model = model;
        _http = new HttpClient(new StatusHandler { InnerHandler = new SocketsHttpHandler() }) { Timeout = Timeout.InfiniteTimeSpan };
        _client = new AnthropicClient { ApiKey = apiKey, BaseUrl = baseUrl.ToString().TrimEnd('/'), MaxRetries = 0, Timeout = timeout, HttpClient = _http };
    }

    public string Name => "anthropic";
    public string Model { get; }
    public bool SupportsLogprobs => false;

    public async Task<JudgeReply> CompleteAsync(JudgeRequest request, CancellationToken cancel)
    {
        if (request.TopLogprobs > 0) throw new JudgeCallException("the Anthropic API gives no log-probs", 0, transient: false);
        string? system = request.Messages.FirstOrDefault(m => m.Role == "system")?.Content;
        var parameters = new MessageCreateParams
        {
            Model = Model,
            MaxTokens = request.MaxTokens,
            Messages = request.Messages.Where(m => m.Role != "system").Select(ToParam).ToList(),
        };
        if (system is not null) parameters = parameters with { System = system };
        Message message;
        try
        {
            message = await _client.Messages.Create(parameters, cancel).ConfigureAwait(false);
        }
        catch (Exception e) when (Find(e) is JudgeCallException j && !ReferenceEquals(j, e))
        {
            throw j;
        }
        string text = string.Concat(message.Content.Select(b => b.TryPickText(out TextBlock? t) ? t.Text : ""));
        return new JudgeReply(text, null, message.Usage.InputTokens, message.Usage.OutputTokens);
    }

    static MessageParam ToParam(ChatTurn t) => t.Role == "assistant"
        ? new AssistantMessageParam(t.Content)
        : new UserMessageParam(t.Content);

    static JudgeCallException? Find(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is JudgeCallException j) return j;
        return null;
    }

    /// <summary>Error responses become <see cref="JudgeCallException"/> (status, Retry-After, the API's message) before the SDK sees them.</summary>
    sealed class StatusHandler : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancel)
        {
            HttpResponseMessage response = await base.SendAsync(request, cancel).ConfigureAwait(false);
            if (response.IsSuccessStatusCode) return response;
            int status = (int)response.StatusCode;
            string body = await response.Content.ReadAsStringAsync(cancel).ConfigureAwait(false);
            string? retryAfter = response.Headers.TryGetValues("Retry-After", out var values) ? values.FirstOrDefault() : null;
            response.Dispose();
            throw new JudgeCallException($"HTTP {status}: {(body.Length > 200 ? body[..200] : body)}", status, JudgeCallException.IsTransientStatus(status),
                JudgeCallException.ParseRetryAfter(retryAfter, DateTimeOffset.UtcNow));
        }
    }

    public void Dispose() => _http.Dispose();
}
