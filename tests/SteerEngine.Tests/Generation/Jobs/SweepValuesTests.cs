using SteerEngine.Generation.Jobs;

namespace SteerEngine.Tests.Generation.Jobs;

[TestFixture]
public class SweepValuesTests
{
    [Test]
    public void An_inclusive_range_gives_every_step_and_ends_exactly_at_stop()
    {
        float[] m = SweepValues.Multipliers("-20:20:1");
        Assert.That(m, Has.Length.EqualTo(41));
        Assert.That(m[0], Is.EqualTo(-20f));
        Assert.That(m[^1], Is.EqualTo(20f));
        Assert.That(SweepValues.Multipliers("-2:2:0.1"), Has.Length.EqualTo(41).And.Contains(2f).And.Contains(0f));
    }

    [Test]
    public void Lists_and_ranges_mix() =>
        Assert.That(SweepValues.Multipliers("-1, 0:1:0.5, 4"), Is.EqualTo(new[] { -1f, 0f, 0.5f, 1f, 4f }));

    [TestCase("a,b", "'a' is not a number")]
    [TestCase("0:1:0", "step must be > 0")]
    [TestCase("2:1:1", "stop is below start")]
    [TestCase("1:2", "neither a number nor start:stop:step")]
    public void Bad_multipliers_are_named(string text, string message) =>
        Assert.That(() => SweepValues.Multipliers(text), Throws.ArgumentException.With.Message.Contains(message));

    [Test]
    public void Layers_must_be_whole_numbers()
    {
        Assert.That(SweepValues.Layers("10:14:2"), Is.EqualTo(new[] { 10, 12, 14 }));
        Assert.That(() => SweepValues.Layers("1.5"), Throws.ArgumentException.With.Message.Contains("whole numbers"));
    }

    [Test]
    public void Shards_partition_the_items()
    {
        var shards = Enumerable.Range(0, 3).Select(k => Shard.Parse($"{k}/3")).ToArray();
        for (long i = 0; i < 100; i++) Assert.That(shards.Count(s => s.Owns(i)), Is.EqualTo(1));
        Assert.That(() => Shard.Parse("3/3"), Throws.ArgumentException.With.Message.Contains("0 ≤ k < n"));
    }
}
