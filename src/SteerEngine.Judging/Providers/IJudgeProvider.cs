using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Scoring;

namespace SteerEngine.Judging.Providers;

/// <summary>One call to a judge: the chat, how many tokens it may answer with, and how many top log-probs of its first token to return (0: none).</summary>
public sealed record JudgeRequest(IReadOnlyList<ChatTurn> Messages, int MaxTokens, int TopLogprobs = 0);

/// <summary>The judge's reply: its text, the top log-probs of its first token when asked for, and the tokens billed.</summary>
public sealed record JudgeReply(string Text, IReadOnlyList<TopLogprob>? TopLogprobs, long PromptTokens, long CompletionTokens);

/// <summary>
/// Where a judge runs. A provider makes one attempt per call and reports failures as exceptions;
/// retrying is the job of <see cref="RetryingJudge"/>, and a <see cref="JudgeCallException"/>
/// says whether a failure is worth retrying.
/// </summary>
public interface IJudgeProvider : IDisposable
{
    string Name { get; }
    /// <summary>The model name as the provider knows it (for records and prices).</summary>
    string Model { get; }
    bool SupportsLogprobs { get; }
    Task<JudgeReply> CompleteAsync(JudgeRequest request, CancellationToken cancel);
}

/// <summary>A failed judge call: the HTTP status (0 when none), whether retrying may help, and the server's Retry-After.</summary>
public sealed class JudgeCallException(string message, int status, bool transient, TimeSpan? retryAfter = null, Exception? inner = null)
    : Exception(message, inner)
{
    public int Status { get; } = status;
    public bool Transient { get; } = transient;
    public TimeSpan? RetryAfter { get; } = retryAfter;

    /// <summary>429, 408, 409 and 5xx are worth retrying (rate limits, overload, time-outs); other 4xx are the request's fault.</summary>
    public static bool IsTransientStatus(int status) => status is 0 or 408 or 409 or 429 || status >= 500;

    /// <summary>Retry-After as seconds or an HTTP date, or null when absent or unreadable.</summary>
    public static TimeSpan? ParseRetryAfter(string? value, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        if (double.TryParse(value.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double s))
            return s >= 0 ? TimeSpan.FromSeconds(s) : null;
        if (DateTimeOffset.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
            return at > now ? at - now : TimeSpan.Zero;
        return null;
    }
}
