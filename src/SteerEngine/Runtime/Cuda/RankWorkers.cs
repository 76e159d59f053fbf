using System.Runtime.ExceptionServices;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// The host threads of a tensor-parallel group: rank 0 runs on the caller's thread, every other
/// rank on its own long-lived thread (started once, not per forward pass). When a rank throws,
/// <c>onFirstError</c> runs once (it aborts the collectives, so ranks waiting in an all-reduce for
/// the failed one return with an error instead of waiting forever), every rank finishes, and
/// <see cref="Run"/> throws the first error.
/// </summary>
sealed class RankWorkers : IDisposable
{
    readonly Thread[] _threads;        // ranks 1..n-1
    readonly SemaphoreSlim[] _start;   // one per thread
    readonly CountdownEvent _done;
    readonly Action _onFirstError;
    Action<int>? _work;
    Exception? _first;
    volatile bool _stopping;

    public RankWorkers(IReadOnlyList<string> rankNames, Action onFirstError)
    {
        _onFirstError = onFirstError;
        int workers = rankNames.Count - 1;
        _start = Enumerable.Range(0, workers).Select(_ => new SemaphoreSlim(0)).ToArray();
        _done = new CountdownEvent(Math.Max(1, workers));
        _threads = Enumerable.Range(1, workers).Select(r => new Thread(() => Loop(r)) { IsBackground = true, Name = rankNames[r] }).ToArray();
        foreach (Thread t in _threads) t.Start();
    }

    /// <summary>Runs work(rank) for every rank at once; returns when all are done.</summary>
    public void Run(Action<int> work)
    {
        _work = work;
        _first = null;
        if (_threads.Length > 0) _done.Reset(_threads.Length);
        foreach (SemaphoreSlim s in _start) s.Release();
        RunRank(0);
        if (_threads.Length > 0) _done.Wait();
        _work = null;
        if (_first is { } error) ExceptionDispatchInfo.Throw(error);
    }

    void RunRank(int rank)
    {
        try { _work!(rank); }
        catch (Exception e)
        {
            if (Interlocked.CompareExchange(ref _first, e, null) is null) _onFirstError();
        }
    }

    void Loop(int rank)
    {
        for (;;)
        {
            _start[rank - 1].Wait();
            if (_stopping) return;
            RunRank(rank);
            _done.Signal();
        }
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (SemaphoreSlim s in _start) s.Release();
        foreach (Thread t in _threads) t.Join();
        foreach (SemaphoreSlim s in _start) s.Dispose();
        _done.Dispose();
    }
}
