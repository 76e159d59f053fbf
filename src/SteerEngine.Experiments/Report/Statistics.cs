namespace SteerEngine.Experiments.Report;

/// <summary>Mean of n values with its 95 % confidence interval (Student t, n − 1 degrees of freedom).</summary>
public sealed record MeanInterval(int N, double Mean, double StandardDeviation, double Low, double High)
{
    public double HalfWidth => (High - Low) / 2;
}

public static class Statistics
{
    /// <summary>Two-sided 95 % quantiles t(0.975, df) for df = 1..30 (standard table values).</summary>
    static readonly double[] T975 =
    [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];

    /// <summary>t(0.975, df); beyond 30 degrees of freedom the table's tail, interpolated in 1/df toward 1.960 (error under 0.002).</summary>
    public static double StudentT975(int df)
    {
        if (df < 1) throw new ArgumentOutOfRangeException(nameof(df), df, "degrees of freedom must be ≥ 1");
        if (df <= 30) return T975[df - 1];
        return 1.960 + (2.042 - 1.960) * 30.0 / df;
    }

    /// <summary>Mean ± t·s/√n; a single value has no interval (both ends are the mean).</summary>
    public static MeanInterval Mean(IReadOnlyCollection<double> values)
    {
        int n = values.Count;
        if (n == 0) throw new ArgumentException("no values");
        double mean = values.Average();
        if (n == 1) return new MeanInterval(1, mean, 0, mean, mean);
        double sd = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        double half = StudentT975(n - 1) * sd / Math.Sqrt(n);
        return new MeanInterval(n, mean, sd, mean - half, mean + half);
    }

    /// <summary>Trapezoid area under y(x) over x sorted ascending, divided by the x span (the curve's average level); one point gives its y.</summary>
    public static double NormalizedArea(IReadOnlyList<double> xs, IReadOnlyList<double> ys)
    {
        if (xs.Count != ys.Count || xs.Count == 0) throw new ArgumentException("area needs matching, non-empty x and y");
        if (xs.Count == 1) return ys[0];
        double area = 0;
        for (int i = 1; i < xs.Count; i++) area += (xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) / 2;
        return area / (xs[^1] - xs[0]);
    }
}
