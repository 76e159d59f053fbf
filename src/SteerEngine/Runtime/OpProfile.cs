using System.Diagnostics;

namespace SteerEngine.Runtime;

/// <summary>
/// Wall time per op of the forward pass (<c>steer bench --profile</c>): set
/// <see cref="Model.Transformer.Profile"/> and every op adds its elapsed time under its name.
/// </summary>
public sealed class OpProfile
{
    readonly Dictionary<string, (long Ticks, long Calls)> _ops = [];

    public static long Start() => Stopwatch.GetTimestamp();

    public void Stop(string op, long start)
    {
        long ticks = Stopwatch.GetTimestamp() - start;
        _ops[op] = _ops.TryGetValue(op, out var t) ? (t.Ticks + ticks, t.Calls + 1) : (ticks, 1);
    }

    /// <summary>Seconds and calls per op, longest first.</summary>
    public IReadOnlyList<(string Op, double Seconds, long Calls)> Totals() =>
        _ops.Select(kv => (kv.Key, kv.Value.Ticks / (double)Stopwatch.Frequency, kv.Value.Calls)).OrderByDescending(t => t.Item2).ToList();

    public void Clear() => _ops.Clear();
}
