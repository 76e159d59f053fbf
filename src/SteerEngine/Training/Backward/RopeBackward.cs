using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Training.Backward;

/// <summary>
/// Input gradient of the rotary embedding (Runtime.Cpu.Rope, HF "rotate half" layout). RoPE rotates each
/// pair (i, i + hd/2) by the angle position · inv_freq[i]; a rotation's transpose is the rotation by the
/// negative angle, so dx = R(−θ) · dy. Angles are computed exactly as the forward computes them.
/// </summary>
public sealed class RopeBackward(Rope rope)
{
    /// <summary>Rotates every head's gradient of one token back, in place. dy: (heads, hd)</summary>
    public void Apply(Span<float> dy, int heads, int position) => rope.ApplyInverse(dy, heads, position);
}
