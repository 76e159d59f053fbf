using System.Buffers;
using System.Numerics.Tensors;
using SteerEngine.Model;

namespace SteerEngine.Training.Backward;

/// <summary>
/// Input gradient of y = x · Wᵀ (Runtime.Cpu.MatMul): dx = dy · W, reading W in the file's layout
/// (out, in) from the mapping, widened exactly to f32. No weight gradient: only steering vectors train.
/// Work is split into tiles of (rows × input columns); each tile widens its slab of W once per
/// block of output rows and adds dy[r, o] · W[o, cols] into dx[r, cols].
/// </summary>
public static class MatMulBackward
{
    const int RowsPerTile = 64, ColsPerTile = 512, OutBlock = 32;

    /// <param name="dy">(rows, out)</param><param name="w">(out, in)</param>
    /// <param name="dx">(rows, in); accumulated into when <paramref name="accumulate"/>, else overwritten</param>
    public static unsafe void Backward(ReadOnlySpan<float> dy, WeightMatrix w, Span<float> dx, int rows, bool accumulate = false)
    {
        int inDim = w.Cols, outDim = w.Rows;
        if (dy.Length < rows * outDim || dx.Length < rows * inDim)
            throw new ArgumentException($"MatMulBackward {w.Name}: buffers too small for {rows} rows");
        if (!accumulate) dx[..(rows * inDim)].Clear();
        int rowTiles = (rows + RowsPerTile - 1) / RowsPerTile, colTiles = (inDim + ColsPerTile - 1) / ColsPerTile;
        fixed (float* dyp = dy, dxp = dx)
        {
            float* dyPtr = dyp, dxPtr = dxp;
            Parallel.For(0, rowTiles * colTiles, tile =>
            {
                int r0 = tile / colTiles * RowsPerTile, r1 = Math.Min(rows, r0 + RowsPerTile);
                int c0 = tile % colTiles * ColsPerTile, c1 = Math.Min(inDim, c0 + ColsPerTile), cols = c1 - c0;
                float[] slab = ArrayPool<float>.Shared.Rent(OutBlock * cols); // (OutBlock, cols) of W
                for (int o0 = 0; o0 < outDim; o0 += OutBlock)
                {
                    int o1 = Math.Min(outDim, o0 + OutBlock);
                    for (int o = o0; o < o1; o++) ReadRowSlice(w, o, c0, slab.AsSpan((o - o0) * cols, cols));
                    for (int r = r0; r < r1; r++)
                    {
                        var dxr = new Span<float>(dxPtr + (long)r * inDim + c0, cols);
                        float* dyr = dyPtr + (long)r * outDim;
                        for (int o = o0; o < o1; o++)
                        {
                            float g = dyr[o];
                            if (g != 0) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(slab, (o - o0) * cols, cols), g, dxr, dxr);
                        }
                    }
                }
                ArrayPool<float>.Shared.Return(slab);
            });
        }
    }

    /// <summary>W[row, col0 .. col0 + destination.Length) widened to f32.</summary>
    public static unsafe void ReadRowSlice(WeightMatrix w, int row, int col0, Span<float> destination)
    {
        long offset = (long)row * w.Cols + col0;
        int n = destination.Length;
        switch (w.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>((float*)w.Data + offset, n).CopyTo(destination);
                break;
            case DType.BF16:
                BFloat16Convert.ToF32(new ReadOnlySpan<ushort>((ushort*)w.Data + offset, n), destination);
                break;
            case DType.F16:
                var src = new ReadOnlySpan<Half>((Half*)w.Data + offset, n);
                for (int i = 0; i < n; i++) destination[i] = (float)src[i];
                break;
            default:
                throw new NotSupportedException($"{w.Name}: dtype {w.DType}");
        }
    }
}
