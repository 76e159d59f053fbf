using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace SteerEngine.Judging.Providers;

/// <summary>Retry settings: attempts in all, the first back-off, its cap, and the time-out of one attempt.</summary>
public sealed record RetryOptions(int MaxAttempts = 6, TimeSpan? BaseDelay = null, TimeSpan? MaxDelay = null, TimeSpan? AttemptTimeout = null)
{
    public TimeSpan Base => BaseDelay ?? TimeSpan.FromSeconds(1);
    public TimeSpan Cap => MaxDelay ?? TimeSpan.FromSeconds(60);
    public TimeSpan Timeout => AttemptTimeout ?? TimeSpan.FromSeconds(120);
}

/// <summary>
/// A provider wrapped in a Polly pipeline: each attempt has a time-out; transient failures (429,
/// 5xx, time-outs, dropped connections, torn or unreadable replies) are retried with exponential
/// back-off and jitter, waiting what the server's Retry-After says when it sends one. A failure that is not
/// transient (400, 401, ...) or that outlasts the attempts is thrown to the caller, who records
/// the item as failed. <see cref="Attempts"/> counts every attempt made, for the run's report.
/// </summary>
public sealed class RetryingJudge : IJudgeProvider
{
    readonly IJudgeProvider _inner;
    readonly ResiliencePipeline _pipeline;
    long _attempts, _retries;

    public RetryingJudge(IJudgeProvider inner, RetryOptions options, TimeProvider? time = null)
    {
        _inner = inner;
        var builder = new ResiliencePipelineBuilder { TimeProvider = time ?? TimeProvider.System };
        builder.AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = Math.Max(0, options.MaxAttempts - 1),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.Base,
            MaxDelay = options.Cap,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && IsTransient(e, args.Context.CancellationToken)),
            DelayGenerator = args =>
            {
                // The server's Retry-After when it gave one (at most ten minutes, so a bogus day does not
                // stall the run); else null, which is the jittered exponential delay.
                TimeSpan? after = (args.Outcome.Exception as JudgeCallException)?.RetryAfter;
                return ValueTask.FromResult(after is { } a ? (TimeSpan?)Min(a, MaxRetryAfter) : null);
            },
            OnRetry = _ => { Interlocked.Increment(ref _retries); return ValueTask.CompletedTask; },
        });
        builder.AddTimeout(options.Timeout);
        _pipeline = builder.Build();
    }

    public string Name => _inner.Name;
    public string Model => _inner.Model;
    public bool SupportsLogprobs => _inner.SupportsLogprobs;
    public long Attempts => Interlocked.Read(ref _attempts);
    public long Retries => Interlocked.Read(ref _retries);

    public async Task<JudgeReply> CompleteAsync(JudgeRequest request, CancellationToken cancel)
    {
        try
        {
            return await _pipeline.ExecuteAsync(async ct =>
            {
                Interlocked.Increment(ref _attempts);
                return await _inner.CompleteAsync(request, ct).ConfigureAwait(false);
            }, cancel).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException e)
        {
            throw new JudgeCallException($"timed out after the last attempt ({e.Timeout.TotalSeconds:0.#} s)", 0, true, null, e);
        }
    }

    static readonly TimeSpan MaxRetryAfter = TimeSpan.FromMinutes(10);

    static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Anything but a permanent API error or the caller's own cancellation is worth another attempt
    /// (an unreadable reply from a torn connection surfaces as whatever the client's parser throws).</summary>
    static bool IsTransient(Exception e, CancellationToken caller) => e switch
    {
        JudgeCallException j => j.Transient,
        OperationCanceledException => !caller.IsCancellationRequested,
        _ => true,
    };

    public void Dispose() => _inner.Dispose();
}
