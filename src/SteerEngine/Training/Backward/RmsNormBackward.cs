namespace SteerEngine.Training.Backward;

/// <summary>
/// Input gradient of y = x · r · w with r = rsqrt(mean(x²) + eps), row by row:
/// dx = r · (w ⊙ dy) − x · r³ / n · Σ(w ⊙ dy ⊙ x). The forward is Runtime.Cpu.RmsNorm.
/// </summary>
public static class RmsNormBackward
{
    /// <param name="x">(rows, n) the forward's input</param><param name="weight">(n)</param>
    /// <param name="dy">(rows, n)</param><param name="dx">(rows, n); accumulated into when <paramref name="accumulate"/>, else overwritten. May alias dy only when not accumulating.</param>
    public static void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> dy, Span<float> dx,
        int rows, float eps, bool accumulate = false)
    {
        int n = weight.Length;
        for (int row = 0; row < rows; row++)
        {
            ReadOnlySpan<float> xr = x.Slice(row * n, n), dyr = dy.Slice(row * n, n);
            Span<float> dxr = dx.Slice(row * n, n);
            double ss = 0, dot = 0;
            for (int i = 0; i < n; i++)
            {
                ss += (double)xr[i] * xr[i];
                dot += (double)weight[i] * dyr[i] * xr[i];
            }
            double r = 1.0 / Math.Sqrt(ss / n + eps);
            float a = (float)r, b = (float)(r * r * r * dot / n);
            for (int i = 0; i < n; i++)
            {
                float g = a * weight[i] * dyr[i] - b * xr[i];
                dxr[i] = accumulate ? dxr[i] + g : g;
            }
        }
    }
}
