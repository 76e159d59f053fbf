namespace SteerEngine.Capture;

/// <summary>How a per-layer direction is made from positive and negative activations.</summary>
public enum ExtractionMethod { MeanDiff, Pca }

/// <summary>
/// Per-layer directions from two sets of activations, each example (entries, H). Mean difference
/// is mean(positive) − mean(negative). PCA is the first principal component of the paired
/// differences (centered), its sign chosen so positives project above negatives, scaled to the
/// length of the mean difference's projection on it so both methods give vectors of comparable size.
/// </summary>
public static class VectorExtraction
{
    public static float[][] Extract(IReadOnlyList<float[][]> positive, IReadOnlyList<float[][]> negative, ExtractionMethod method)
    {
        if (positive.Count == 0 || negative.Count == 0) throw new ArgumentException("extraction needs at least one positive and one negative example");
        int entries = positive[0].Length, hidden = positive[0][0].Length;
        var result = new float[entries][];
        for (int e = 0; e < entries; e++)
        {
            double[] meanDiff = Mean(positive, e, hidden);
            double[] meanNeg = Mean(negative, e, hidden);
            for (int i = 0; i < hidden; i++) meanDiff[i] -= meanNeg[i];
            result[e] = method == ExtractionMethod.MeanDiff
                ? meanDiff.Select(x => (float)x).ToArray()
                : FirstComponent(positive, negative, e, hidden, meanDiff);
        }
        return result;
    }

    static double[] Mean(IReadOnlyList<float[][]> set, int entry, int hidden)
    {
        var m = new double[hidden];
        foreach (float[][] x in set)
            for (int i = 0; i < hidden; i++) m[i] += x[entry][i];
        for (int i = 0; i < hidden; i++) m[i] /= set.Count;
        return m;
    }

    static float[] FirstComponent(IReadOnlyList<float[][]> positive, IReadOnlyList<float[][]> negative, int entry, int hidden, double[] meanDiff)
    {
        if (positive.Count != negative.Count) throw new ArgumentException($"PCA needs paired examples: {positive.Count} positive vs {negative.Count} negative");
        int n = positive.Count;
        var d = new double[n][];
        for (int k = 0; k < n; k++)
        {
            d[k] = new double[hidden];
            for (int i = 0; i < hidden; i++) d[k][i] = positive[k][entry][i] - negative[k][entry][i] - meanDiff[i];
        }
        // Power iteration on the covariance DᵀD without forming it (H may be 8192).
        var rng = new Random(entry + 1);
        double[] v = Enumerable.Range(0, hidden).Select(_ => rng.NextDouble() - 0.5).ToArray();
        Normalize(v);
        for (int iter = 0; iter < 200; iter++)
        {
            var next = new double[hidden];
            foreach (double[] row in d)
            {
                double dot = 0;
                for (int i = 0; i < hidden; i++) dot += row[i] * v[i];
                for (int i = 0; i < hidden; i++) next[i] += dot * row[i];
            }
            if (Normalize(next) == 0) { next = (double[])meanDiff.Clone(); Normalize(next); } // all differences equal: PC is the mean difference
            double change = 0;
            for (int i = 0; i < hidden; i++) change += Math.Abs(Math.Abs(next[i]) - Math.Abs(v[i]));
            v = next;
            if (change < 1e-12) break;
        }
        double projection = 0;
        for (int i = 0; i < hidden; i++) projection += meanDiff[i] * v[i];
        if (projection < 0) { projection = -projection; for (int i = 0; i < hidden; i++) v[i] = -v[i]; }
        return v.Select(x => (float)(x * projection)).ToArray();
    }

    static double Normalize(double[] v)
    {
        double norm = Math.Sqrt(v.Sum(x => x * x));
        if (norm > 0) for (int i = 0; i < v.Length; i++) v[i] /= norm;
        return norm;
    }

    /// <summary>
    /// Per entry: how well the mean-difference direction separates the sets — the gap between the
    /// sets' mean projections onto the unit direction, divided by the pooled standard deviation.
    /// </summary>
    public static double[] Separation(IReadOnlyList<float[][]> positive, IReadOnlyList<float[][]> negative)
    {
        float[][] directions = Extract(positive, negative, ExtractionMethod.MeanDiff);
        var result = new double[directions.Length];
        for (int e = 0; e < directions.Length; e++)
        {
            double norm = Math.Sqrt(directions[e].Sum(x => (double)x * x));
            if (norm == 0) continue;
            double[] Project(IReadOnlyList<float[][]> set) => set.Select(x =>
            {
                double dot = 0;
                for (int i = 0; i < x[e].Length; i++) dot += x[e][i] * (double)directions[e][i];
                return dot / norm;
            }).ToArray();
            double[] p = Project(positive), q = Project(negative);
            double mp = p.Average(), mq = q.Average();
            double var = (p.Sum(x => (x - mp) * (x - mp)) + q.Sum(x => (x - mq) * (x - mq))) / Math.Max(1, p.Length + q.Length - 2);
            result[e] = (mp - mq) / Math.Max(Math.Sqrt(var), 1e-12);
        }
        return result;
    }
}
