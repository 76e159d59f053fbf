using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace SteerEngine.Benchmarks;

/// <summary>
/// A column that turns a benchmark's mean time into a rate: <paramref name="work"/> gives the units of
/// work one invocation does (flops or bytes) from the case's parameters; the column shows
/// work / mean time, scaled by 1e-9 (GFLOP/s or GB/s).
/// </summary>
public sealed class ThroughputColumn(string name, Func<BenchmarkCase, double> work) : IColumn
{
    public string Id => nameof(ThroughputColumn) + "." + name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => $"{name}: work per invocation / mean time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "-";
        double seconds = stats.Mean * 1e-9;
        return (work(benchmarkCase) / seconds * 1e-9).ToString("F1");
    }

    public static int Param(BenchmarkCase c, string name) =>
        c.Parameters[name] is { } value ? Convert.ToInt32(value) : throw new ArgumentException($"benchmark has no parameter {name}");
}
