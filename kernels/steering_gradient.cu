// The row operations of the steered training pass around the blocks: the steering add at layer L,
// the vector's gradient (the sum over rows of the gradient at h_L), row gathers of the f32 residual
// stream, and the f32 → bf16 conversion of a gradient going into a GEMM.
#include "common.cuh"

// out (T, H) = prefix (T, H) + m · v (H). grid (T), block (any).
extern "C" __global__ void steer_rows(const float* __restrict__ prefix, const float* __restrict__ v, float m,
                                      float* __restrict__ out, int hidden)
{
    long long r = blockIdx.x;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[r * hidden + i] = v[i] * m + prefix[r * hidden + i];
}

// grad (H) = m · Σ_r d[r] for d (rows, H), each column summed in row order. grid (ceil(H / 32)), block (32).
extern "C" __global__ void sum_rows(const float* __restrict__ d, int rows, int hidden, float m, float* __restrict__ grad)
{
    int i = blockIdx.x * 32 + threadIdx.x;
    if (i >= hidden) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += d[(long long)r * hidden + i];
    grad[i] = m * s;
}

// dst (R, W) f32 ← src (*, W) f32 at row rows[r]. grid (R), block (any).
extern "C" __global__ void gather_rows_f32(const float* __restrict__ src, const int* __restrict__ rows,
                                           float* __restrict__ dst, int width)
{
    const float* s = src + (long long)rows[blockIdx.x] * width;
    float* d = dst + (long long)blockIdx.x * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) d[i] = s[i];
}

// dst (rows, W) bf16 ← src (rows, W) f32. grid (rows), block (any).
extern "C" __global__ void rows_to_bf16(const float* __restrict__ src, bf16_t* __restrict__ dst, int width)
{
    long long r = blockIdx.x;
    for (int i = threadIdx.x; i < width; i += blockDim.x) dst[r * width + i] = f32_to_bf16(src[r * width + i]);
}
