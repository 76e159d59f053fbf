using SteerEngine.Capture;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Capture;

/// <summary>A reducing sink's reduced path (what a device backend feeds it) against its own full-state Record.</summary>
[TestFixture]
public class StateReductionsTests
{
    [Test]
    public void Activation_reducer_from_masked_sums_equals_the_reducer_from_full_states()
    {
        const int entries = 3, hidden = 37;
        var rng = new Random(4);
        int[] promptLengths = [5, 1, 9];
        // Two chunks of a batch: a prefill of every prompt with some response rows, then one decode row each.
        (int[] Seq, int[] Pos)[] chunks =
        [
            ([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            ([0, 1, 2], [7, 3, 9]),
        ];
        var full = new ActivationReducer(entries, hidden, promptLengths);
        IReducedStateSink reduced = new ActivationReducer(entries, hidden, promptLengths);
        foreach ((int[] seq, int[] pos) in chunks)
        {
            var layout = new BatchLayout(seq, pos);
            StateReductions plan = reduced.Reductions(layout);
            for (int e = 0; e < entries; e++)
            {
                float[] states = Compare.RandomVector(rng, seq.Length * hidden);
                full.Record(e, states, layout);
                reduced.RecordReduced(e, plan.Reduce(e, states, hidden), plan);
            }
        }
        foreach (Reduction r in Enum.GetValues<Reduction>())
            for (int s = 0; s < promptLengths.Length; s++)
                for (int e = 0; e < entries; e++)
                    Assert.That(((ActivationReducer)reduced).Get(s, r)[e], Is.EqualTo(full.Get(s, r)[e]).Within(1e-5), $"{r} sequence {s} entry {e}");
    }

    [Test]
    public void Reduce_projects_every_row_and_sums_each_mask()
    {
        var layout = new BatchLayout([0, 0, 1], [0, 1, 0]);
        float[] states = [1, 2, 3, 4, 5, 6]; // (3, 2)
        var plan = new StateReductions(layout, [[[1f, 0f], [1f, 1f]]], [[0, 2], [1]]);
        ReducedStates r = plan.Reduce(0, states, 2);
        Assert.That(r.Projections, Is.EqualTo(new float[] { 1, 3, 3, 7, 5, 11 }));
        Assert.That(r.Sums, Is.EqualTo(new float[] { 6, 8, 3, 4 }));
    }
}
