using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Experiments;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

public class ItemLockTests
{
    static readonly LockTiming Fast = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(50));

    static string LockPath() => Path.Combine(TestModels.TempDir("locks"), "item.jsonl.lock");

    [Test]
    public void A_held_lock_is_not_taken_and_is_free_after_release()
    {
        string path = LockPath();
        using (ItemLock? first = ItemLock.TryAcquire(path, Fast))
        {
            Assert.That(first, Is.Not.Null);
            Assert.That(ItemLock.TryAcquire(path, Fast), Is.Null);
            LockHolder holder = LockHolder.Read(path)!;
            Assert.That((holder.Host, holder.Pid), Is.EqualTo((Environment.MachineName, Environment.ProcessId)));
        }
        Assert.That(File.Exists(path), Is.False);
        using ItemLock? again = ItemLock.TryAcquire(path, Fast);
        Assert.That(again, Is.Not.Null);
    }

    [Test]
    public void The_heartbeat_is_renewed_while_held()
    {
        string path = LockPath();
        using ItemLock? held = ItemLock.TryAcquire(path, Fast);
        DateTime first = LockHolder.Read(path)!.Heartbeat;
        Thread.Sleep(500);
        Assert.That(LockHolder.Read(path)!.Heartbeat, Is.GreaterThan(first.AddMilliseconds(200)));
    }

    [Test]
    public void A_lock_of_a_dead_process_on_this_host_is_taken_over()
    {
        using var dead = Process.Start(new ProcessStartInfo("true"))!;
        dead.WaitForExit();
        string path = LockPath();
        DateTime now = DateTime.UtcNow;
        File.WriteAllText(path, JsonSerializer.Serialize(new LockHolder(Environment.MachineName, dead.Id, 0, "old", now, now)));
        using ItemLock? taken = ItemLock.TryAcquire(path, Fast);
        Assert.That(taken, Is.Not.Null);
        Assert.That(LockHolder.Read(path)!.Pid, Is.EqualTo(Environment.ProcessId));
    }

    [Test]
    public void Taking_over_a_dead_holders_lock_removes_the_temporary_files_it_left()
    {
        using var dead = Process.Start(new ProcessStartInfo("true"))!;
        dead.WaitForExit();
        string path = LockPath();
        string dir = Path.GetDirectoryName(path)!;
        DateTime now = DateTime.UtcNow;
        File.WriteAllText(path, JsonSerializer.Serialize(new LockHolder(Environment.MachineName, dead.Id, 0, "old", now, now)));
        string orphan = $"{path}.{dead.Id}.0123456789abcdef.tmp";
        string others = Path.Combine(dir, $"item.jsonl.{dead.Id + 1}.fedcba9876543210.tmp");
        File.WriteAllText(orphan, "{\"torn");
        File.WriteAllText(others, "another process's file");
        using ItemLock? taken = ItemLock.TryAcquire(path, Fast);
        Assert.That(taken, Is.Not.Null);
        Assert.That(File.Exists(orphan), Is.False, "the dead holder's temporary file is gone");
        Assert.That(File.Exists(others), Is.True, "another pid's temporary file is left alone");
    }

    [Test]
    public void A_lock_on_another_host_is_stale_only_when_its_heartbeat_is_old()
    {
        string path = LockPath();
        DateTime now = DateTime.UtcNow;
        File.WriteAllText(path, JsonSerializer.Serialize(new LockHolder("elsewhere", 1, 0, "live", now, now)));
        Assert.That(ItemLock.TryAcquire(path, Fast), Is.Null, "a fresh heartbeat keeps the lock");
        File.WriteAllText(path, JsonSerializer.Serialize(new LockHolder("elsewhere", 1, 0, "old", now, now - TimeSpan.FromSeconds(10))));
        using ItemLock? taken = ItemLock.TryAcquire(path, Fast);
        Assert.That(taken, Is.Not.Null);
    }

    [Test]
    public void Of_many_takers_of_a_stale_lock_exactly_one_wins()
    {
        // A stale age far beyond any stall of a loaded machine, so the winner's own lock cannot look stale (its heartbeat
        // timer starved) while the other takers try; only the old lock is stale.
        var timing = new LockTiming(TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(50));
        string path = LockPath();
        DateTime old = DateTime.UtcNow - TimeSpan.FromMinutes(10);
        File.WriteAllText(path, JsonSerializer.Serialize(new LockHolder("elsewhere", 1, 0, "old", old, old)));
        var winners = new System.Collections.Concurrent.ConcurrentBag<ItemLock>();
        Parallel.For(0, 8, _ => { if (ItemLock.TryAcquire(path, timing) is ItemLock l) winners.Add(l); });
        Assert.That(winners, Has.Count.EqualTo(1));
        foreach (ItemLock l in winners) l.Dispose();
    }
}
