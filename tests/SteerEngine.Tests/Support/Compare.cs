namespace SteerEngine.Tests.Support;

public static class Compare
{
    /// <summary>max|a − b| / max|b|: the DESIGN.md §4 measure for logits.</summary>
    public static double RelativeMaxError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "length");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)actual[i] - expected[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)expected[i]));
        }
        return maxDiff / Math.Max(maxRef, 1e-30);
    }

    /// <summary>a·b / (|a| |b|), in double.</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, a2 = 0, b2 = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; a2 += (double)a[i] * a[i]; b2 += (double)b[i] * b[i]; }
        return dot / Math.Sqrt(a2 * b2);
    }

    public static int[] RandomTokens(Random rng, int n, int vocab) => Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();

    public static float[] RandomVector(Random rng, int n, float scale = 1f) =>
        Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
}
