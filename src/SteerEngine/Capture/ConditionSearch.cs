using SteerEngine.Generation;
using SteerEngine.Runtime;
using SteerEngine.Steering;

namespace SteerEngine.Capture;

/// <summary>One threshold rule at one layer and how well it splits the two prompt sets (set A is the positive class).</summary>
/// <param name="Margin">the gap between the scores on either side of the threshold, as a fraction of the scores' range</param>
public sealed record ConditionSplit(int Layer, float Threshold, ConditionComparator Comparator, double F1, double Precision, double Recall, double Accuracy, double Margin)
{
    public string ComparatorName => SteeringCondition.ComparatorNames[(int)Comparator];
}

/// <summary>What <see cref="ConditionSearch.Run"/> found: the condition vectors, the best split per layer and overall.</summary>
/// <param name="Vectors">(layers+1, H) in the hidden-states numbering: row L + 1 is block L's condition vector</param>
public sealed record ConditionSearchResult(float[][] Vectors, IReadOnlyList<ConditionSplit> PerLayer, ConditionSplit Best);

/// <summary>
/// CAST's grid search (<c>steer extract --condition</c>): given prompts that should meet a condition (set A)
/// and prompts that should not (set B), the condition vector at each block is the difference of the two sets'
/// mean prompt states (each prompt's state being the mean over its positions, as <see cref="SteeringCondition"/>
/// reads it); every prompt is scored by its cosine with that vector, and every threshold between two adjacent
/// scores is tried with both comparators. A layer's best rule has the highest F1 (ties: the widest gap around
/// the threshold, relative to the spread of the scores); the best overall is the best of the layers (ties: the
/// widest relative gap, then the earlier layer). The F1 is measured on the prompts the vectors came from; hold prompts out to check it.
/// </summary>
public static class ConditionSearch
{
    /// <param name="vectors">condition vectors to score with, (layers+1, H); null: the mean differences of the two sets</param>
    /// <param name="layers">blocks to search; null: every block</param>
    public static ConditionSearchResult Run(IForwardModel model, IReadOnlyList<int[]> a, IReadOnlyList<int[]> b,
        float[][]? vectors = null, IReadOnlyList<int>? layers = null)
    {
        if (a.Count == 0 || b.Count == 0) throw new ArgumentException($"the condition search needs prompts in both sets (A has {a.Count}, B has {b.Count})");
        int L = model.Config.NumLayers, H = model.Config.HiddenSize;
        if (vectors is not null && (vectors.Length != L + 1 || vectors.Any(v => v.Length != H)))
            throw new ArgumentException($"condition vectors must be [{L + 1}, {H}] (layers+1, hidden)");
        int[] blocks = (layers ?? Enumerable.Range(0, L).ToArray()).ToArray();
        foreach (int l in blocks)
            if (l < 0 || l >= L) throw new ArgumentException($"condition layer {l} is out of range: the model has blocks 0..{L - 1}");
        int[] entries = [-1, .. Enumerable.Range(0, L)];   // block -1 reads entry 0, the embeddings, so the file has every row
        double[][][] meansA = ConditionalSteering.PromptMeans(model, a, [], entries);
        double[][][] meansB = ConditionalSteering.PromptMeans(model, b, [], entries);
        vectors ??= entries.Select((_, e) => FisherDirection(meansA.Select(m => m[e]).ToList(), meansB.Select(m => m[e]).ToList(), H)).ToArray();

        var perLayer = new List<ConditionSplit>();
        foreach (int layer in blocks)
        {
            float[] c = vectors[layer + 1];
            double[] scoresA = meansA.Select(m => SteeringCondition.Cosine(m[layer + 1], c)).ToArray();
            double[] scoresB = meansB.Select(m => SteeringCondition.Cosine(m[layer + 1], c)).ToArray();
            perLayer.Add(BestSplit(layer, scoresA, scoresB));
        }
        ConditionSplit best = perLayer.OrderByDescending(s => s.F1).ThenByDescending(s => s.Margin).ThenBy(s => s.Layer).First();
        return new ConditionSearchResult(vectors, perLayer, best);
    }

    /// <summary>
    /// Fisher's discriminant at one entry, within the subspace orthogonal to the two sets' midpoint
    /// m = (μ_A + μ_B)/2: every state x is first replaced by x − (x·m̂)m̂, then c = (Σ_w + λI)⁻¹ (μ_A − μ_B) with
    /// Σ_w the pooled within-set covariance and λ = <see cref="Ridge"/> · trace(Σ_w) / H. So c ⟂ m: the part
    /// every prompt shares drops out of h·c, and the sign of cos(h, c) says on which side of the midpoint h lies.
    /// Unit length.
    /// </summary>
    public static float[] FisherDirection(IReadOnlyList<double[]> a, IReadOnlyList<double[]> b, int hidden)
    {
        double[] mid = Mean(a, hidden).Zip(Mean(b, hidden), (x, y) => (x + y) / 2).ToArray();
        double midNorm = Math.Sqrt(mid.Sum(x => x * x));
        double[] Orthogonal(double[] x)
        {
            if (midNorm == 0) return x;
            double along = x.Zip(mid, (p, q) => p * q).Sum() / (midNorm * midNorm);
            return x.Zip(mid, (p, q) => p - along * q).ToArray();
        }
        var pa = a.Select(Orthogonal).ToList();
        var pb = b.Select(Orthogonal).ToList();
        double[] ma = Mean(pa, hidden), mb = Mean(pb, hidden);
        var cov = new double[hidden, hidden];
        foreach (var (set, mean) in new[] { (pa, ma), (pb, mb) })
            foreach (double[] x in set)
                for (int i = 0; i < hidden; i++)
                {
                    double di = x[i] - mean[i];
                    for (int j = 0; j <= i; j++) cov[i, j] += di * (x[j] - mean[j]);
                }
        int n = pa.Count + pb.Count;
        double trace = 0;
        for (int i = 0; i < hidden; i++) trace += cov[i, i] / n;
        double lambda = Ridge * Math.Max(trace, 1e-12) / hidden;
        for (int i = 0; i < hidden; i++)
        {
            for (int j = 0; j <= i; j++) cov[i, j] /= n;
            cov[i, i] += lambda;
        }
        double[] c = SolveCholesky(cov, ma.Zip(mb, (x, y) => x - y).ToArray());
        double norm = Math.Sqrt(c.Sum(x => x * x));
        return c.Select(x => norm > 0 ? (float)(x / norm) : 0f).ToArray();
    }

    /// <summary>The ridge of the within-set covariance, as a fraction of its mean eigenvalue.</summary>
    public const double Ridge = 0.001;

    static double[] Mean(IReadOnlyList<double[]> set, int hidden)
    {
        var m = new double[hidden];
        foreach (double[] x in set)
            for (int i = 0; i < hidden; i++) m[i] += x[i] / set.Count;
        return m;
    }

    /// <summary>Solves A x = b for a symmetric positive definite A given by its lower triangle (overwritten by its Cholesky factor).</summary>
    static double[] SolveCholesky(double[,] a, double[] b)
    {
        int n = b.Length;
        for (int j = 0; j < n; j++)
        {
            double d = a[j, j];
            for (int k = 0; k < j; k++) d -= a[j, k] * a[j, k];
            a[j, j] = Math.Sqrt(d);
            for (int i = j + 1; i < n; i++)
            {
                double s = a[i, j];
                for (int k = 0; k < j; k++) s -= a[i, k] * a[j, k];
                a[i, j] = s / a[j, j];
            }
        }
        var y = new double[n];
        for (int i = 0; i < n; i++)
        {
            double s = b[i];
            for (int k = 0; k < i; k++) s -= a[i, k] * y[k];
            y[i] = s / a[i, i];
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double s = y[i];
            for (int k = i + 1; k < n; k++) s -= a[k, i] * x[k];
            x[i] = s / a[i, i];
        }
        return x;
    }

    /// <summary>The best threshold rule on these scores: every midpoint between adjacent distinct scores (and one past each end), both comparators.</summary>
    public static ConditionSplit BestSplit(int layer, double[] scoresA, double[] scoresB)
    {
        double[] all = [.. scoresA.Concat(scoresB).Distinct().Order()];
        double spread = Math.Max(all[^1] - all[0], 1e-12);
        var candidates = new List<(double Threshold, double Gap)> { (all[0] - spread * 1e-3, 0), (all[^1] + spread * 1e-3, 0) };
        for (int i = 1; i < all.Length; i++) candidates.Add(((all[i - 1] + all[i]) / 2, (all[i] - all[i - 1]) / spread));
        ConditionSplit? best = null;
        foreach (var (threshold, gap) in candidates)
            foreach (ConditionComparator cmp in new[] { ConditionComparator.Greater, ConditionComparator.Less })
            {
                var rule = new SteeringCondition(layer, [], (float)threshold, cmp);
                int tp = scoresA.Count(s => rule.Holds(s)), fp = scoresB.Count(s => rule.Holds(s));
                int fn = scoresA.Length - tp, tn = scoresB.Length - fp;
                double precision = tp + fp == 0 ? 0 : (double)tp / (tp + fp), recall = (double)tp / scoresA.Length;
                double f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
                if (best is null || f1 > best.F1 || (f1 == best.F1 && gap > best.Margin))
                    best = new ConditionSplit(layer, (float)threshold, cmp, f1, precision, recall, (double)(tp + tn) / (tp + fp + fn + tn), gap);
            }
        return best!;
    }
}
