using System.Collections.Concurrent;
using SteerEngine.Runtime;
using SteerEngine.Tokenization;

namespace SteerEngine.Generation;

/// <summary>Limits of an engine: its batch, and how many submitted requests may wait for a slot.</summary>
public sealed record EngineOptions(SchedulerOptions Scheduler, int MaxWaiting = 1024)
{
    public EngineOptions() : this(new SchedulerOptions()) { }
}

/// <summary>A snapshot of an engine's load and totals.</summary>
public sealed record EngineStats(int Running, int Waiting, long PromptTokens, long CompletionTokens, long Finished, long Cancelled, long Failed);

/// <summary>The engine's waiting queue is full; the caller should retry later.</summary>
public sealed class EngineBusyException(int waiting) : Exception($"the engine has {waiting} requests waiting, its limit; retry later")
{
    public int Waiting { get; } = waiting;
}

/// <summary>
/// One continuous batch shared by many callers. <see cref="Submit"/> may be called from any thread at
/// any time; one background loop steps a <see cref="ContinuousBatch"/>, admitting new requests and
/// dropping cancelled ones between steps. A request's tokens are those <see cref="Generator"/> gives it
/// alone: its sampling, steering and seed are its own. Token callbacks run on the loop's thread, so
/// they must be quick (hand the token to a channel, say); a callback that throws fails its own request.
/// </summary>
public sealed class GenerationEngine : IDisposable
{
    readonly ContinuousBatch _batch;
    readonly EngineOptions _options;
    readonly ConcurrentQueue<Pending> _waiting = new();
    readonly Dictionary<int, Pending> _running = [];
    readonly SemaphoreSlim _wake = new(0);
    readonly CancellationTokenSource _stop = new();
    readonly Thread _loop;
    int _waitingCount, _runningCount, _nextId;
    long _tokensProcessed, _promptTokens, _completionTokens, _finished, _cancelled, _failed;

    sealed class Pending(int id, GenerationRequest request, Action<GeneratedToken>? onToken, CancellationToken cancel)
    {
        public int Id { get; } = id;
        public GenerationRequest Request { get; } = request;
        public Action<GeneratedToken>? OnToken { get; } = onToken;
        public CancellationToken Cancel { get; } = cancel;
        public TaskCompletionSource<GenerationResult> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenRegistration Registration;
    }

    public GenerationEngine(IForwardModel model, TextTokenizer? tokenizer = null, EngineOptions? options = null)
    {
        _options = options ?? new EngineOptions();
        _batch = new ContinuousBatch(model, tokenizer, _options.Scheduler);
        _loop = new Thread(Run) { IsBackground = true, Name = "generation engine" };
        _loop.Start();
    }

    /// <summary>Tokens of the model processed so far (prefill + decode), for throughput.</summary>
    public long TokensProcessed => Interlocked.Read(ref _tokensProcessed);

    public EngineStats Stats => new(Volatile.Read(ref _runningCount), Volatile.Read(ref _waitingCount), Interlocked.Read(ref _promptTokens),
        Interlocked.Read(ref _completionTokens), Interlocked.Read(ref _finished), Interlocked.Read(ref _cancelled), Interlocked.Read(ref _failed));

    /// <summary>Throws an <see cref="ArgumentException"/> naming what is wrong with the request for this model.</summary>
    public void Validate(GenerationRequest request) => _batch.Validate(request);

    /// <summary>
    /// Queues a request for the next step. Invalid requests throw <see cref="ArgumentException"/> here;
    /// a full waiting queue throws <see cref="EngineBusyException"/>. Cancelling <paramref name="cancel"/>
    /// frees the request's slot at the next step and cancels the task. The result's (and the tokens')
    /// <see cref="GenerationResult.Index"/> is the engine's id for the request.
    /// </summary>
    public Task<GenerationResult> Submit(GenerationRequest request, Action<GeneratedToken>? onToken = null, CancellationToken cancel = default)
    {
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        _batch.Validate(request);
        if (Interlocked.Increment(ref _waitingCount) > _options.MaxWaiting)
        {
            int waiting = Interlocked.Decrement(ref _waitingCount);
            throw new EngineBusyException(waiting);
        }
        var p = new Pending(Interlocked.Increment(ref _nextId), request, onToken, cancel);
        p.Registration = cancel.Register(() => _wake.Release());
        _waiting.Enqueue(p);
        _wake.Release();
        return p.Result.Task;
    }

    void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            DropCancelled();
            Admit();
            Volatile.Write(ref _runningCount, _batch.Count);
            if (_batch.Count == 0)
            {
                try { _wake.Wait(_stop.Token); } catch (OperationCanceledException) { break; }
                continue;
            }
            try
            {
                long before = _batch.TokensProcessed;
                IReadOnlyList<GenerationResult> finished = _batch.Step(OnToken);
                Interlocked.Add(ref _tokensProcessed, _batch.TokensProcessed - before);
                foreach (GenerationResult r in finished) Finish(r);
            }
            catch (Exception e)
            {
                // A failed step leaves caches half written: every running request fails, the engine goes on.
                foreach (int id in _batch.Clear()) Fail(id, e);
            }
        }
        foreach (int id in _batch.Clear()) Cancel(_running[id]);
        while (_waiting.TryDequeue(out Pending? p)) Cancel(p);
    }

    void DropCancelled()
    {
        foreach (Pending p in _running.Values.Where(p => p.Cancel.IsCancellationRequested).ToList())
        {
            _batch.Remove(p.Id);
            Cancel(p);
        }
    }

    void Admit()
    {
        while (!_batch.IsFull && _waiting.TryDequeue(out Pending? p))
        {
            Interlocked.Decrement(ref _waitingCount);
            if (p.Cancel.IsCancellationRequested) { Cancel(p, running: false); continue; }
            _running[p.Id] = p;
            try
            {
                GenerationResult? immediate = _batch.Admit(p.Id, p.Request);
                if (immediate is not null) Finish(immediate);
            }
            catch (Exception e) { Fail(p.Id, e); }
        }
    }

    void OnToken(GeneratedToken t)
    {
        Pending p = _running[t.Index];
        if (p.OnToken is null) return;
        try { p.OnToken(t); }
        catch (Exception e)
        {
            _batch.Remove(t.Index);
            Fail(t.Index, e);
        }
    }

    void Finish(GenerationResult r)
    {
        if (!_running.Remove(r.Index, out Pending? p)) return;
        p.Registration.Dispose();
        Interlocked.Add(ref _promptTokens, r.PromptTokens);
        Interlocked.Add(ref _completionTokens, r.Tokens.Length);
        Interlocked.Increment(ref _finished);
        p.Result.TrySetResult(r);
    }

    void Fail(int id, Exception e)
    {
        if (!_running.Remove(id, out Pending? p)) return;
        p.Registration.Dispose();
        Interlocked.Increment(ref _failed);
        p.Result.TrySetException(e);
    }

    void Cancel(Pending p, bool running = true)
    {
        if (running) _running.Remove(p.Id);
        p.Registration.Dispose();
        Interlocked.Increment(ref _cancelled);
        p.Result.TrySetCanceled(p.Cancel.IsCancellationRequested ? p.Cancel : CancellationToken.None);
    }

    /// <summary>Stops the loop; requests still running or waiting are cancelled.</summary>
    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _loop.Join();
        _stop.Dispose();
    }
}
