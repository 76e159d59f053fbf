namespace SteerEngine.Capture;

/// <summary>
/// A sink that needs only reductions of the hidden states: every row projected on a few directions
/// per entry, and sums of rows by mask. A backend whose states live on a device computes these
/// there and sends only them (CudaTransformer); <see cref="IHiddenStateSink.Record"/> stays the
/// reference, and <see cref="RecordReduced"/> of <see cref="StateReductions.Reduce"/> must agree with it.
/// </summary>
public interface IReducedStateSink : IHiddenStateSink
{
    /// <summary>What this sink needs of a forward batch with this layout (asked once per forward pass).</summary>
    StateReductions Reductions(BatchLayout layout);

    /// <summary>One entry's reductions, as <see cref="Reductions"/> asked for them.</summary>
    void RecordReduced(int entry, ReducedStates reduced, StateReductions plan);
}

/// <summary>
/// The reductions a sink asks of one forward batch, the same masks at every entry.
/// </summary>
/// <param name="Layout">the batch the reductions are of</param>
/// <param name="Directions">per entry (L+1): the directions, each (H), every row is projected on; empty for none</param>
/// <param name="MaskRows">per mask: the rows it sums (each row at most once)</param>
public sealed record StateReductions(BatchLayout Layout, float[][][] Directions, int[][] MaskRows)
{
    /// <summary>The host reference: one entry's reductions of its (rows, H) states.</summary>
    public ReducedStates Reduce(int entry, ReadOnlySpan<float> states, int hidden)
    {
        float[][] dirs = Directions[entry];
        int rows = Layout.Rows;
        var projections = new float[rows * dirs.Length];
        for (int r = 0; r < rows; r++)
            for (int d = 0; d < dirs.Length; d++)
                projections[r * dirs.Length + d] = System.Numerics.Tensors.TensorPrimitives.Dot(states.Slice(r * hidden, hidden), dirs[d]);
        var sums = new float[MaskRows.Length * hidden];
        var sum = new double[hidden];
        for (int m = 0; m < MaskRows.Length; m++)
        {
            Array.Clear(sum);
            foreach (int r in MaskRows[m])
                for (int i = 0; i < hidden; i++) sum[i] += states[r * hidden + i];
            for (int i = 0; i < hidden; i++) sums[m * hidden + i] = (float)sum[i];
        }
        return new ReducedStates(projections, sums);
    }
}

/// <summary>One entry's reductions: <paramref name="Projections"/> (rows, directions of the entry), <paramref name="Sums"/> (masks, H).</summary>
public readonly record struct ReducedStates(float[] Projections, float[] Sums);
