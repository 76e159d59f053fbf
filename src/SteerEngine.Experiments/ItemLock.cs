using System.Diagnostics;
using System.Text.Json;

namespace SteerEngine.Experiments;

/// <summary>What a lock file says: who holds the item (host, pid and that process's start time), since when, and its last heartbeat.</summary>
public sealed record LockHolder(string Host, int Pid, long ProcessStart, string Token, DateTime Started, DateTime Heartbeat)
{
    /// <summary>
    /// Stale: the holder is a process on this host that no longer runs (or a newer process with its pid), or its
    /// heartbeat is older than <paramref name="staleAfter"/> (a holder on another host that died or lost the disk).
    /// </summary>
    public bool IsStale(TimeSpan staleAfter, DateTime now)
    {
        if (Host == Environment.MachineName && !ItemLock.ProcessRuns(Pid, ProcessStart)) return true;
        return now - Heartbeat > staleAfter;
    }

    public static LockHolder? Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<LockHolder>(File.ReadAllText(path));
        }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        catch (JsonException) { return null; } // being written: the next look sees it whole
    }
}

/// <summary>
/// An item claimed through the file system: a lock file created exclusively (O_EXCL), holding host, pid and a
/// heartbeat that a timer renews. A stale lock is taken over under a second exclusive file (<c>.takeover</c>), so
/// two processes that both see it stale cannot both win. The holder that finds its lock taken over (it stalled past
/// the stale age) stops renewing it and reports <see cref="Lost"/>.
/// </summary>
public sealed class ItemLock : IDisposable
{
    readonly string _path;
    readonly LockHolder _holder;
    readonly Timer _heartbeat;
    readonly object _gate = new();
    bool _disposed;

    public bool Lost { get; private set; }

    ItemLock(string path, LockHolder holder, TimeSpan period)
    {
        _path = path;
        _holder = holder;
        _heartbeat = new Timer(_ => Beat(), null, period, period);
    }

    /// <summary>Claims <paramref name="path"/>, taking it over if stale; null when a live process holds it.</summary>
    public static ItemLock? TryAcquire(string path, LockTiming timing)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (TryCreate(path, timing) is ItemLock fresh) return fresh;
        LockHolder? current = LockHolder.Read(path);
        if (current is null || !current.IsStale(timing.StaleAfter, DateTime.UtcNow)) return null;

        string takeover = path + ".takeover";
        if (!TryCreateEmpty(takeover))
        {
            // A taker that died mid-takeover leaves its file behind; after the stale age anyone may clear it.
            if (File.Exists(takeover) && DateTime.UtcNow - File.GetLastWriteTimeUtc(takeover) > timing.StaleAfter) File.Delete(takeover);
            return null;
        }
        try
        {
            LockHolder? again = LockHolder.Read(path);
            if (again is null || again.Token != current.Token || !again.IsStale(timing.StaleAfter, DateTime.UtcNow)) return null;
            File.Delete(path);
            if (again.Host == Environment.MachineName) AtomicFile.RemoveOrphans(Path.GetDirectoryName(Path.GetFullPath(path))!, again.Pid);
            return TryCreate(path, timing);
        }
        finally
        {
            File.Delete(takeover);
        }
    }

    static ItemLock? TryCreate(string path, LockTiming timing)
    {
        using Process self = Process.GetCurrentProcess();
        DateTime now = DateTime.UtcNow;
        var holder = new LockHolder(Environment.MachineName, Environment.ProcessId, StartTicks(self), Guid.NewGuid().ToString("N"), now, now);
        try
        {
            using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            JsonSerializer.Serialize(f, holder);
            f.Flush(flushToDisk: true);
        }
        catch (IOException e) when (AlreadyExists(e, path))
        {
            return null;
        }
        return new ItemLock(path, holder, timing.Heartbeat);
    }

    static bool TryCreateEmpty(string path)
    {
        try
        {
            new FileStream(path, FileMode.CreateNew, FileAccess.Write).Dispose();
            return true;
        }
        catch (IOException e) when (AlreadyExists(e, path))
        {
            return false;
        }
    }

    /// <summary>
    /// Whether an exclusive create failed because the file was there. Asked of the error, not the disk: a taker may
    /// delete the stale lock between the failed create and a look at the disk, which then finds no file.
    /// </summary>
    static bool AlreadyExists(IOException e, string path) =>
        e.HResult is 17 /* EEXIST */ or unchecked((int)0x80070050) /* ERROR_FILE_EXISTS */ or unchecked((int)0x800700B7) /* ERROR_ALREADY_EXISTS */
        || File.Exists(path);

    void Beat()
    {
        lock (_gate)
        {
            if (_disposed || Lost) return;
            if (LockHolder.Read(_path) is { } on && on.Token != _holder.Token) { Lost = true; return; }
            AtomicFile.WriteAllText(_path, JsonSerializer.Serialize(_holder with { Heartbeat = DateTime.UtcNow }));
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _heartbeat.Dispose();
            if (LockHolder.Read(_path) is { } on && on.Token == _holder.Token) File.Delete(_path);
        }
    }

    internal static long StartTicks(Process p)
    {
        try { return p.StartTime.ToUniversalTime().Ticks; }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { return 0; }
    }

    /// <summary>Whether process <paramref name="pid"/> runs and is the one that started at <paramref name="startTicks"/> (pids are reused).</summary>
    internal static bool ProcessRuns(int pid, long startTicks)
    {
        try
        {
            using Process p = Process.GetProcessById(pid);
            if (p.HasExited) return false;
            long ticks = StartTicks(p);
            return startTicks == 0 || ticks == 0 || Math.Abs(ticks - startTicks) < TimeSpan.TicksPerSecond;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
