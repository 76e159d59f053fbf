using System.Diagnostics;
using System.Text;
using SteerEngine.Generation.Jobs;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;

namespace SteerEngine.Judging.Run;

/// <summary>Live counters of a run, read by the progress bar from another thread.</summary>
public sealed class JudgeProgress
{
    long _done, _failed, _promptTokens, _completionTokens, _costMicros;
    public long Total { get; set; }
    public long Skipped { get; set; }
    public bool CostKnown { get; set; } = true;
    public Stopwatch Clock { get; } = new();
    public long Done => Interlocked.Read(ref _done);
    public long Failed => Interlocked.Read(ref _failed);
    public long PromptTokens => Interlocked.Read(ref _promptTokens);
    public long CompletionTokens => Interlocked.Read(ref _completionTokens);
    public double Cost => Interlocked.Read(ref _costMicros) / 1e6;

    public void Add(JudgeOutcome o, double? cost)
    {
        Interlocked.Increment(ref _done);
        if (o.Status == JudgeOutcome.Failed) Interlocked.Increment(ref _failed);
        Interlocked.Add(ref _promptTokens, o.PromptTokens);
        Interlocked.Add(ref _completionTokens, o.CompletionTokens);
        if (cost is double c) Interlocked.Add(ref _costMicros, (long)Math.Round(c * 1e6));
    }

    /// <summary>Units per second over this run's own work (skipped units excluded).</summary>
    public double Rate => Clock.Elapsed.TotalSeconds > 0 ? Done / Clock.Elapsed.TotalSeconds : 0;
    public TimeSpan? Eta => Rate > 0 ? TimeSpan.FromSeconds((Total - Skipped - Done) / Rate) : null;
}

/// <summary>
/// Judges every unit that is not in the output yet, up to <c>maxConcurrent</c> at a time, and
/// appends one record per unit as it completes (whole lines, flushed in groups: a kill loses at
/// most the unflushed records, which the next run judges again; nothing is judged twice in the
/// output). Every unit ends as a record: a call that fails after the provider's retries is
/// recorded with status "failed" and its error.
/// </summary>
public static class JudgeRun
{
    public static async Task RunAsync(Func<IEnumerable<JudgeUnit>> units, IJudgeProvider provider, string outPath, bool resume,
        int maxConcurrent, Prices prices, JudgeProgress progress, CancellationToken cancel = default)
    {
        if (maxConcurrent < 1) throw new ArgumentException($"--max-concurrent {maxConcurrent} must be ≥ 1");
        using JsonlOutput output = JsonlOutput.Open(outPath, resume, out HashSet<string> done);
        long total = 0, skipped = 0;
        foreach (JudgeUnit u in units())
        {
            total++;
            if (done.Contains(CallerId.Key(u.Id))) skipped++;
        }
        progress.Total = total;
        progress.Skipped = skipped;
        progress.CostKnown = provider.Name == "local" || prices.Find(provider.Model) is not null;
        progress.Clock.Start();
        var gate = new object();
        await Parallel.ForEachAsync(units().Where(u => !done.Contains(CallerId.Key(u.Id))),
            new ParallelOptions { MaxDegreeOfParallelism = maxConcurrent, CancellationToken = cancel },
            async (unit, ct) =>
            {
                JudgeOutcome outcome = await JudgeAsync(unit, provider, ct).ConfigureAwait(false);
                double? cost = provider.Name == "local" ? 0 : prices.Cost(provider.Model, outcome.PromptTokens, outcome.CompletionTokens);
                byte[] line = Encoding.UTF8.GetBytes(JudgeRecord.Line(unit, outcome, provider.Name, provider.Model, cost));
                lock (gate) output.Append(line);
                progress.Add(outcome, cost);
            }).ConfigureAwait(false);
        progress.Clock.Stop();
    }

    /// <summary>A unit's calls (both orders of a pair at once), then its outcome; failures become a failed outcome, never an exception.</summary>
    public static async Task<JudgeOutcome> JudgeAsync(JudgeUnit unit, IJudgeProvider provider, CancellationToken cancel)
    {
        var requests = unit.Requests();
        var replies = new JudgeReply?[requests.Count];
        var errors = new string?[requests.Count];
        await Task.WhenAll(requests.Select(async (r, i) =>
        {
            try
            {
                replies[i] = await provider.CompleteAsync(r.Request, cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancel.IsCancellationRequested)
            {
                errors[i] = e.Message;
            }
        })).ConfigureAwait(false);
        return UnitScoring.Interpret(unit, replies, errors);
    }
}
