using System.Numerics.Tensors;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// The block's second residual add fused with steering: x ← x + mlp, then for each row the
/// steering terms of its sequence at this layer and position, in order: by default x ← x + multiplier · vector,
/// else the term's operation (<see cref="SteeringOps"/>).
/// </summary>
public static class ResidualAdd
{
    /// <param name="x">(rows, H) residual stream, updated in place</param>
    /// <param name="delta">(rows, H) the MLP output</param>
    /// <param name="steering">per row: the row's sequence steering, or null</param>
    /// <param name="positions">per row: the token's position in its sequence</param>
    public static void ForwardSteered(Span<float> x, ReadOnlySpan<float> delta, int hidden, int layer,
        ReadOnlySpan<SequenceSteering?> steering, ReadOnlySpan<int> positions)
    {
        TensorPrimitives.Add(x, delta, x);
        for (int r = 0; r < steering.Length; r++)
        {
            if (steering[r] is not { } s) continue;
            Span<float> xr = x.Slice(r * hidden, hidden);
            foreach (SteeringAdd a in s.Adds)
                if (a.Layer == layer && a.AppliesAt(positions[r], s.PromptLength))
                {
                    (float lo, float hi) = a.ProjectionBounds;
                    SteeringOps.Apply(xr, a.Vector, a.Op, a.Multiplier, lo, hi);
                }
        }
    }
}
