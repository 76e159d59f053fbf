using System.Buffers;
using System.Numerics.Tensors;
using SteerEngine.Model;

namespace SteerEngine.Runtime.Cpu;

/// <summary>y = x · Wᵀ with W in the file's layout (out, in), widened exactly to f32 row by row.</summary>
public static class MatMul
{
    const int RowsPerTask = 64;

    /// <param name="x">(rows, in)</param><param name="w">(out, in)</param><param name="y">(rows, out)</param>
    public static unsafe void Forward(ReadOnlySpan<float> x, WeightMatrix w, Span<float> y, int rows)
    {
        int inDim = w.Cols, outDim = w.Rows;
        if (x.Length < rows * inDim || y.Length < rows * outDim)
            throw new ArgumentException($"MatMul {w.Name}: buffers too small for {rows} rows");
        fixed (float* xp = x, yp = y)
        {
            float* xPtr = xp, yPtr = yp;
            int tasks = (outDim + RowsPerTask - 1) / RowsPerTask;
            Parallel.For(0, tasks, task =>
            {
                float[] row = ArrayPool<float>.Shared.Rent(inDim);
                int end = Math.Min(outDim, (task + 1) * RowsPerTask);
                for (int o = task * RowsPerTask; o < end; o++)
                {
                    w.ReadRow(o, row);
                    var wr = new ReadOnlySpan<float>(row, 0, inDim);
                    for (int r = 0; r < rows; r++)
                        yPtr[(long)r * outDim + o] = TensorPrimitives.Dot(new ReadOnlySpan<float>(xPtr + (long)r * inDim, inDim), wr);
                }
                ArrayPool<float>.Shared.Return(row);
            });
        }
    }
}
