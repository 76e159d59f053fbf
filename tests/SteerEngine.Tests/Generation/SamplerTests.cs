using SteerEngine.Generation;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

[TestFixture]
public class SamplerTests
{
    [Test]
    public void Greedy_picks_the_largest_logit()
    {
        float[] logits = Compare.RandomVector(new Random(4), 1000);
        int best = Array.IndexOf(logits, logits.Max());
        Assert.That(Sampler.Sample(logits, new SamplingOptions(), 0.99), Is.EqualTo(best));
    }

    [Test]
    public void Top_k_1_and_tiny_top_p_behave_like_greedy_at_any_draw()
    {
        float[] logits = Compare.RandomVector(new Random(5), 500, 3f);
        int best = Array.IndexOf(logits, logits.Max());
        foreach (double u in new[] { 0.0, 0.3, 0.999 })
        {
            Assert.That(Sampler.Sample(logits, new SamplingOptions(1f, TopK: 1), u), Is.EqualTo(best));
            Assert.That(Sampler.Sample(logits, new SamplingOptions(1f, TopP: 1e-6f), u), Is.EqualTo(best));
        }
    }

    [Test]
    public void Sampling_frequencies_follow_the_softmax()
    {
        float[] logits = [0f, 1f, 2f];
        double[] p = logits.Select(l => Math.Exp(l)).ToArray();
        double z = p.Sum();
        var counts = new int[3];
        var rng = new SplitMix64(1);
        const int n = 60000;
        for (int i = 0; i < n; i++) counts[Sampler.Sample(logits, new SamplingOptions(1f), rng.NextOpenUnit())]++;
        for (int k = 0; k < 3; k++) Assert.That(counts[k] / (double)n, Is.EqualTo(p[k] / z).Within(0.01), $"token {k}");
    }

    [Test]
    public void Top_p_keeps_only_the_nucleus()
    {
        float[] logits = [5f, 4.9f, -5f, -6f];
        var rng = new SplitMix64(2);
        for (int i = 0; i < 2000; i++)
            Assert.That(Sampler.Sample(logits, new SamplingOptions(1f, TopP: 0.9f), rng.NextOpenUnit()), Is.LessThan(2));
    }
}
