namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// The backend's one GEMM shape, y = x · Wᵀ with row-major x (rows, in) bf16, W (out, in) bf16 as
/// the weight files store it, and y (rows, out) f32 — put to cuBLAS, which is column-major: a
/// row-major (r, c) matrix is a column-major (c, r) one, so yᵀ (out × rows) = op(W) · xᵀ where the
/// stored W is column-major (in × out) and needs op = T, and xᵀ is column-major (in × rows), op = N.
/// </summary>
public static class Linear
{
    public static void Forward(CudaDevice d, DevicePtr x, DevicePtr w, DevicePtr y, int rows, int outDim, int inDim) =>
        d.GemmEx(GemmOp.T, GemmOp.N, m: outDim, n: rows, k: inDim,
            1f, w, CudaDataType.BF16, lda: inDim,
            x, CudaDataType.BF16, ldb: inDim,
            0f, y, CudaDataType.F32, ldc: outDim);
}
