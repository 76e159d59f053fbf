// RMSNorm input gradient: y = x · r · w with r = 1/sqrt(mean(x²) + eps), so
// dx = r · (w ⊙ dy) − x · r³/n · Σ(w ⊙ dy ⊙ x). The forward is rmsnorm.cu. One row per block.
#include "common.cuh"

// x (*, n) f32 and dx (*, n) f32 at row rows[b] (or row b when rows is null); w (n) f32; dy (B, n) f32.
// accumulate: dx += the gradient, else dx = it. grid (B), block (multiple of 32).
extern "C" __global__ void rmsnorm_backward(const float* __restrict__ x, const int* __restrict__ rows, const float* __restrict__ w,
                                           const float* __restrict__ dy, float* __restrict__ dx, int n, float eps, int accumulate)
{
    __shared__ float scratch[32];
    long long row = rows ? rows[blockIdx.x] : blockIdx.x;
    const float* xr = x + row * n;
    const float* g = dy + (long long)blockIdx.x * n;
    float* out = dx + row * n;
    float ss = 0.f, dot = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        ss += xr[i] * xr[i];
        dot += w[i] * g[i] * xr[i];
    }
    ss = block_sum(ss, scratch);
    dot = block_sum(dot, scratch);
    float r = 1.f / sqrtf(ss / (float)n + eps);
    float b = r * r * r * dot / (float)n;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        float v = r * w[i] * g[i] - b * xr[i];
        out[i] = accumulate ? out[i] + v : v;
    }
}
