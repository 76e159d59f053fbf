using System.Numerics.Tensors;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// A residual add fused with steering at one hook point: x ← x + delta, then for each row the
/// steering terms of its sequence at this layer, hook and position, in order: by default
/// x ← x + multiplier · vector, else the term's operation (<see cref="SteeringOps"/>), on the whole
/// row or on a head's slice of it.
/// </summary>
public static class ResidualAdd
{
    /// <param name="x">(rows, width) residual stream (or attention output at attn_z), updated in place</param>
    /// <param name="delta">(rows, width) the sublayer output, or empty for no add (attn_z)</param>
    /// <param name="steering">per row: the row's sequence steering, or null</param>
    /// <param name="positions">per row: the token's position in its sequence</param>
    public static void ForwardSteered(Span<float> x, ReadOnlySpan<float> delta, int width, int layer, SteeringHook hook,
        ReadOnlySpan<SequenceSteering?> steering, ReadOnlySpan<int> positions)
    {
        if (!delta.IsEmpty) TensorPrimitives.Add(x, delta, x);
        for (int r = 0; r < steering.Length; r++)
        {
            if (steering[r] is not { } s) continue;
            Span<float> xr = x.Slice(r * width, width);
            foreach (SteeringAdd a in s.Adds)
                if (a.Layer == layer && a.Hook == hook && a.AppliesAt(positions[r], s.PromptLength))
                {
                    (float lo, float hi) = a.ProjectionBounds;
                    (int offset, int count) = a.Slice;
                    SteeringOps.Apply(xr.Slice(offset, count), a.Vector, a.Op, a.Multiplier, lo, hi);
                }
        }
    }
}
