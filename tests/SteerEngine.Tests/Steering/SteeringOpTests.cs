using NUnit.Framework;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Tests.Steering;

/// <summary>Each steering operation against its definition in plain double arithmetic, the position masks, and the spec's validation.</summary>
[TestFixture]
public class SteeringOpTests
{
    const int H = 257;

    static double[] D(float[] x) => x.Select(v => (double)v).ToArray();
    static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();
    static double Norm(double[] a) => Math.Sqrt(Dot(a, a));

    static (float[] H, float[] V) Row(int seed)
    {
        var rng = new Random(seed);
        float[] h = new float[H], v = new float[H];
        for (int i = 0; i < H; i++) { h[i] = (float)(rng.NextDouble() * 4 - 2); v[i] = (float)(rng.NextDouble() * 2 - 1); }
        return (h, v);
    }

    /// <summary>The definition: with u = v/|v| and p = h·u, h ← h + (target − p)·u.</summary>
    static double[] Project(float[] h, float[] v, Func<double, double> target)
    {
        double[] hd = D(h), u = D(v);
        double n = Norm(u);
        for (int i = 0; i < H; i++) u[i] /= n;
        double p = Dot(hd, u), t = target(p);
        return hd.Select((x, i) => x + (t - p) * u[i]).ToArray();
    }

    static void AssertClose(float[] actual, double[] expected, string what)
    {
        double scale = expected.Max(Math.Abs), worst = actual.Select((a, i) => Math.Abs(a - expected[i])).Max();
        Assert.That(worst / scale, Is.LessThanOrEqualTo(1e-6), what);
    }

    static float[] Apply(float[] h, float[] v, SteeringAdd term)
    {
        float[] x = (float[])h.Clone();
        (float lo, float hi) = term.ProjectionBounds;
        SteeringOps.Apply(x, v, term.Op, term.Multiplier, lo, hi);
        return x;
    }

    [Test]
    public void Ablate_removes_the_component_along_the_direction()
    {
        var (h, v) = Row(1);
        float[] x = Apply(h, v, new SteeringAdd(0, v, 0f) { Op = SteeringOp.Ablate });
        AssertClose(x, Project(h, v, _ => 0), "ablate");
        Assert.That(Math.Abs(Dot(D(x), D(v))) / Norm(D(v)), Is.LessThan(1e-4));
    }

    [TestCase(-0.3f, 0.2f)]
    [TestCase(1.5f, float.PositiveInfinity)]
    [TestCase(float.NegativeInfinity, -1.5f)]
    public void Cap_clamps_the_projection_and_keeps_the_rest(float lo, float hi)
    {
        var (h, v) = Row(2);
        float[] x = Apply(h, v, new SteeringAdd(0, v, 0f) { Op = SteeringOp.Cap, Lo = lo, Hi = hi });
        AssertClose(x, Project(h, v, p => Math.Clamp(p, lo, hi)), $"cap [{lo}, {hi}]");
    }

    [Test]
    public void Set_puts_the_projection_at_the_value()
    {
        var (h, v) = Row(3);
        float[] x = Apply(h, v, new SteeringAdd(0, v, 0f) { Op = SteeringOp.Set, Value = 2.5f });
        AssertClose(x, Project(h, v, _ => 2.5), "set");
        Assert.That(Dot(D(x), D(v)) / Norm(D(v)), Is.EqualTo(2.5).Within(1e-4));
    }

    [Test]
    public void Add_normalized_adds_then_restores_the_norm()
    {
        var (h, v) = Row(4);
        float[] x = Apply(h, v, new SteeringAdd(0, v, 6f) { Op = SteeringOp.AddNormalized });
        double[] added = D(h).Select((a, i) => a + 6.0 * v[i]).ToArray();
        double scale = Norm(D(h)) / Norm(added);
        AssertClose(x, added.Select(a => a * scale).ToArray(), "add_normalized");
    }

    [Test]
    public void Add_is_the_plain_multiply_add()
    {
        var (h, v) = Row(5);
        float[] x = Apply(h, v, new SteeringAdd(0, v, -3f));
        Assert.That(x, Is.EqualTo(h.Select((a, i) => v[i] * -3f + a).ToArray()));
    }

    [Test]
    public void Position_masks_select_their_positions()
    {
        const int prompt = 5;
        int[] Selected(SteeringAdd a) => Enumerable.Range(0, 12).Where(p => a.AppliesAt(p, prompt)).ToArray();
        var v = new float[1];
        Assert.That(Selected(new SteeringAdd(0, v, 1f, SteeringPositions.All)), Is.EqualTo(Enumerable.Range(0, 12)));
        Assert.That(Selected(new SteeringAdd(0, v, 1f, SteeringPositions.Prompt)), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(Selected(new SteeringAdd(0, v, 1f, SteeringPositions.Response)), Is.EqualTo(Enumerable.Range(4, 8)));
        Assert.That(Selected(new SteeringAdd(0, v, 1f, SteeringPositions.LastPrompt)), Is.EqualTo(new[] { 4 }));
        Assert.That(Selected(new SteeringAdd(0, v, 1f, SteeringPositions.FirstK) { FirstK = 3 }), Is.EqualTo(new[] { 4, 5, 6 }));
        Assert.That(Selected(new SteeringAdd(0, v, 1f, SteeringPositions.Tokens) { TokenPositions = [0, 7, 11] }), Is.EqualTo(new[] { 0, 7, 11 }));
    }

    [Test]
    public void Bad_terms_are_rejected_with_the_reason()
    {
        float[] v = [1f, 0f], zero = [0f, 0f];
        string Error(SteeringAdd a) => Assert.Throws<ArgumentException>(() => new SequenceSteering([a], 3).Validate(4, 2))!.Message;
        Assert.That(Error(new SteeringAdd(0, zero, 1f) { Op = SteeringOp.Ablate }), Does.Contain("ablate").And.Contain("zero"));
        Assert.That(Error(new SteeringAdd(0, v, 1f) { Op = SteeringOp.Cap, Lo = 2f, Hi = 1f }), Does.Contain("lo ≤ hi"));
        Assert.That(Error(new SteeringAdd(0, v, 1f) { Op = SteeringOp.Cap }), Does.Contain("needs lo, hi"));
        Assert.That(Error(new SteeringAdd(0, v, 1f, SteeringPositions.FirstK)), Does.Contain("k ≥ 1"));
        Assert.That(Error(new SteeringAdd(0, v, 1f, SteeringPositions.Tokens)), Does.Contain("non-empty"));
        Assert.That(Error(new SteeringAdd(0, v, 1f, SteeringPositions.Tokens) { TokenPositions = [3, 3] }), Does.Contain("ascending"));
        Assert.That(SteeringOpNames.Parse("add_normalized"), Is.EqualTo(SteeringOp.AddNormalized));
        Assert.That(() => SteeringOpNames.Parse("scale"), Throws.ArgumentException.With.Message.Contains("add, add_normalized, ablate, cap, set"));
        Assert.That(SteeringPositionsExtensions.Parse("last_prompt"), Is.EqualTo(SteeringPositions.LastPrompt));
    }
}
