using System.Numerics.Tensors;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// One steering term on one row, the plain reference of every kernel (the C kernels do the same
/// operations in the same order). Sums of squares and dot products accumulate in double, in index
/// order; the row update is an unfused multiply then add, as the add has always been.
/// </summary>
public static class SteeringOps
{
    /// <param name="h">(H) the row, updated in place</param>
    /// <param name="v">(H) the term's vector (not necessarily unit: projections divide by |v|)</param>
    /// <param name="lo">for the projection ops, the clamp of h·u (ablate 0, 0; set value, value)</param>
    public static void Apply(Span<float> h, ReadOnlySpan<float> v, SteeringOp op, float multiplier, float lo, float hi)
    {
        switch (op)
        {
            case SteeringOp.Add:
                TensorPrimitives.MultiplyAdd(v, multiplier, h, h);
                break;
            case SteeringOp.AddNormalized:
                double before = SumOfSquares(h);
                TensorPrimitives.MultiplyAdd(v, multiplier, h, h);
                double after = SumOfSquares(h);
                if (after > 0) TensorPrimitives.Multiply(h, (float)Math.Sqrt(before / after), h);
                break;
            default:
                double norm = Math.Sqrt(SumOfSquares(v)), projection = Dot(h, v) / norm;
                float step = (float)((Math.Clamp(projection, lo, hi) - projection) / norm);
                TensorPrimitives.MultiplyAdd(v, step, h, h);
                break;
        }
    }

    static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }

    static double Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * y[i];
        return s;
    }
}
