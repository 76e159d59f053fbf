// RMSNorm: y = x · 1/sqrt(mean(x²) + eps) · weight, one row per block.
#include "common.cuh"

// x (rows, n) f32; w (n) f32; y32 (rows, n) f32 or null, may alias x; y16 (rows, n) bf16 or null
// (the GEMM input). grid (rows), block (multiple of 32).
extern "C" __global__ void rmsnorm(const float* x, const float* __restrict__ w, float* y32, bf16_t* y16, int n, float eps)
{
    __shared__ float scratch[32];
    const float* xr = x + (long long)blockIdx.x * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss, scratch);
    float scale = 1.f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        float y = xr[i] * scale * w[i];
        if (y32) y32[(long long)blockIdx.x * n + i] = y;
        if (y16) y16[(long long)blockIdx.x * n + i] = f32_to_bf16(y);
    }
}
