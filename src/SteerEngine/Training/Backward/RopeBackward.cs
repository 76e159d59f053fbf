using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Training.Backward;

/// <summary>
/// Input gradient of the rotary embedding (Runtime.Cpu.Rope, HF "rotate half" layout). RoPE rotates each
/// pair (i, i + hd/2) by the angle position · inv_freq[i]; a rotation's transpose is the rotation by the
/// negative angle, so dx = R(−θ) · dy. Angles are computed exactly as the forward computes them.
/// </summary>
public sealed class RopeBackward
{
    readonly int _headDim;
    readonly float[] _invFreq; // (hd/2)

    public RopeBackward(ModelConfig c)
    {
        _headDim = c.HeadDim;
        _invFreq = Rope.InverseFrequencies(c.HeadDim, c.RopeTheta, c.RopeScaling);
    }

    /// <summary>Rotates every head's gradient of one token back, in place. dy: (heads, hd)</summary>
    public void Apply(Span<float> dy, int heads, int position)
    {
        int half = _headDim / 2;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        for (int i = 0; i < half; i++)
        {
            double angle = (float)position * _invFreq[i];
            cos[i] = (float)Math.Cos(angle);
            sin[i] = (float)Math.Sin(angle);
        }
        for (int h = 0; h < heads; h++)
        {
            Span<float> g = dy.Slice(h * _headDim, _headDim);
            for (int i = 0; i < half; i++)
            {
                float g1 = g[i], g2 = g[i + half];
                g[i] = g1 * cos[i] + g2 * sin[i];
                g[i + half] = g2 * cos[i] - g1 * sin[i];
            }
        }
    }
}
