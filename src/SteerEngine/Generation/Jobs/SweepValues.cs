using System.Globalization;

namespace SteerEngine.Generation.Jobs;

/// <summary>Parses sweep axes: lists "12,14" and inclusive ranges "start:stop:step" ("-20:20:1" → 41 values).</summary>
public static class SweepValues
{
    public static float[] Multipliers(string text) => Parse(text, "--multipliers").Select(v => (float)v).ToArray();

    public static int[] Layers(string text)
    {
        double[] values = Parse(text, "--layers");
        if (values.Any(v => v != Math.Floor(v))) throw new ArgumentException($"--layers '{text}' must be whole numbers");
        return values.Select(v => (int)v).ToArray();
    }

    static double[] Parse(string text, string option)
    {
        var values = new List<double>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string[] r = part.Split(':');
            if (r.Length == 1) values.Add(Number(r[0]));
            else if (r.Length == 3)
            {
                double start = Number(r[0]), stop = Number(r[1]), step = Number(r[2]);
                if (step <= 0) throw new ArgumentException($"{option} range '{part}': step must be > 0");
                if (stop < start) throw new ArgumentException($"{option} range '{part}': stop is below start");
                long count = (long)Math.Floor((stop - start) / step + 1e-9) + 1;
                if (count > 100000) throw new ArgumentException($"{option} range '{part}' has {count} values");
                // Computed from the index, not by accumulation, so -2:2:0.1 ends exactly at 2.
                for (long i = 0; i < count; i++) values.Add(Math.Round(start + i * step, 10));
            }
            else throw new ArgumentException($"{option} '{part}' is neither a number nor start:stop:step");
        }
        if (values.Count == 0) throw new ArgumentException($"{option} '{text}' has no values");
        return values.ToArray();

        double Number(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
            ? v : throw new ArgumentException($"{option} '{text}': '{s}' is not a number");
    }
}

/// <summary>A job split k of n ("--shard 2/8", 0-based k): item i belongs to shard i mod n.</summary>
public sealed record Shard(int Index, int Count)
{
    public static Shard All { get; } = new(0, 1);

    public static Shard Parse(string text)
    {
        string[] p = text.Split('/');
        if (p.Length == 2 && int.TryParse(p[0], out int k) && int.TryParse(p[1], out int n) && n >= 1 && k >= 0 && k < n)
            return new Shard(k, n);
        throw new ArgumentException($"--shard '{text}' must be k/n with 0 ≤ k < n (e.g. 0/4)");
    }

    public bool Owns(long item) => item % Count == Index;
    public override string ToString() => $"{Index}/{Count}";
}
