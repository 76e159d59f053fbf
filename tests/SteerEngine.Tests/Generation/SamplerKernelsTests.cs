using SteerEngine.Generation;

namespace SteerEngine.Tests.Generation;

/// <summary>The sampler's vectorized scans against plain loops, at lengths that are not multiples of a vector.</summary>
[TestFixture]
public class SamplerKernelsTests
{
    static float[] Z(Random rng, int n) => Enumerable.Range(0, n).Select(i => i % 29 == 3 ? float.NegativeInfinity : i % 31 == 5 ? -0f : -12f * (float)rng.NextDouble()).ToArray();

    [Test]
    public void Scans_match_plain_loops()
    {
        var rng = new Random(25);
        foreach (int n in new[] { 1, 7, 8, 9, 1001 })
        {
            float[] z = Z(rng, n);
            var into = new int[n];

            int count = SamplerKernels.GatherBetween(z, -5f, -1f, into);
            Assert.That(into[..count], Is.EqualTo(Enumerable.Range(0, n).Where(i => z[i] >= -5f && z[i] < -1f)), $"GatherBetween, n = {n}");
            Assert.That(SamplerKernels.CountAtLeast(z, -3f), Is.EqualTo(z.Count(v => v >= -3f)), $"CountAtLeast, n = {n}");

            const float scale = -4095f / 12f;
            SamplerKernels.BucketIndices(z, -7f, scale, 4095, into);
            Assert.That(into, Is.EqualTo(z.Select(v => v >= -7f ? (int)MathF.Min(4095, v * scale) : 4096)), $"BucketIndices, n = {n}");
            int[] buckets = (int[])into.Clone();
            int b = buckets[n / 2];
            count = SamplerKernels.GatherEqual(buckets, b, into);
            Assert.That(into[..count], Is.EqualTo(Enumerable.Range(0, n).Where(i => buckets[i] == b)), $"GatherEqual, n = {n}");
        }
    }

    [Test]
    public void Bucket_indices_never_put_a_larger_z_in_a_later_bucket()
    {
        float[] z = Z(new Random(26), 4000).Where(float.IsFinite).OrderDescending().ToArray();
        var into = new int[z.Length];
        SamplerKernels.BucketIndices(z, float.NegativeInfinity, -4095f / 12f, 4095, into);
        for (int i = 1; i < z.Length; i++) Assert.That(into[i], Is.GreaterThanOrEqualTo(into[i - 1]), $"z {z[i - 1]} then {z[i]}");
    }
}
