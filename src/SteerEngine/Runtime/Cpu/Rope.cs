using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// Rotary position embedding in the Hugging Face "rotate half" layout: element i pairs with
/// element i + hd/2. Frequencies follow HF, including Llama 3's frequency scaling, and like HF the
/// angle is the f32 product position · inv_freq: at long positions that rounding is part of the
/// model the weights were trained with.
/// </summary>
public sealed class Rope
{
    readonly int _headDim;
    readonly float[] _invFreq; // (hd/2)

    public Rope(ModelConfig c)
    {
        _headDim = c.HeadDim;
        _invFreq = InverseFrequencies(c.HeadDim, c.RopeTheta, c.RopeScaling);
    }

    public static float[] InverseFrequencies(int headDim, double theta, Llama3RopeScaling? scaling)
    {
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1f / (float)Math.Pow(theta, (float)(2 * i) / headDim);
        if (scaling is null) return inv;

        double lowFreqWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
        double highFreqWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen > lowFreqWavelen) inv[i] = (float)(inv[i] / scaling.Factor); // low frequencies: scaled
            else if (wavelen >= highFreqWavelen)                               // medium: interpolated
            {
                double smooth = (scaling.OriginalMaxPositionEmbeddings / wavelen - scaling.LowFreqFactor)
                                / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                inv[i] = (float)((1 - smooth) * inv[i] / scaling.Factor + smooth * inv[i]);
            }
        }
        return inv;
    }

    /// <summary>Rotates every head of one token in place. x: (heads, hd)</summary>
    public void Apply(Span<float> x, int heads, int position) => Rotate(x, heads, position, inverse: false);

    /// <summary>
    /// Rotates every head back by the same angles: the transpose of <see cref="Apply"/>, which is the
    /// input gradient of RoPE (dx = R(−θ)·dy). x: (heads, hd)
    /// </summary>
    public void ApplyInverse(Span<float> x, int heads, int position) => Rotate(x, heads, position, inverse: true);

    void Rotate(Span<float> x, int heads, int position, bool inverse)
    {
        int half = _headDim / 2;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        for (int i = 0; i < half; i++)
        {
            double angle = (float)position * _invFreq[i];
            cos[i] = (float)Math.Cos(angle);
            sin[i] = inverse ? -(float)Math.Sin(angle) : (float)Math.Sin(angle);
        }
        for (int h = 0; h < heads; h++)
        {
            Span<float> v = x.Slice(h * _headDim, _headDim);
            for (int i = 0; i < half; i++)
            {
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * cos[i] - x2 * sin[i];
                v[i + half] = x2 * cos[i] + x1 * sin[i];
            }
        }
    }
}
