using System.Numerics.Tensors;

namespace SteerEngine.Runtime.Cpu;

/// <summary>y = x · rsqrt(mean(x²) + eps) · weight, row by row.</summary>
public static class RmsNorm
{
    /// <param name="x">(rows, n)</param><param name="weight">(n)</param><param name="y">(rows, n); may alias x</param>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int rows, float eps)
    {
        int n = weight.Length;
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> xr = x.Slice(r * n, n);
            Span<float> yr = y.Slice(r * n, n);
            // Sum of squares in double: the reference path should not add its own rounding noise.
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
            float scale = (float)(1.0 / Math.Sqrt(ss / n + eps));
            TensorPrimitives.Multiply(xr, scale, yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }
}
