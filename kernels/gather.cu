// Row gathers: the token embedding lookup, and picking the rows that need logits.
#include "common.cuh"

// x (T, H) f32 ← table (V, H) bf16 at row tokens[r]. grid (T), block (any).
extern "C" __global__ void embedding_gather(const bf16_t* __restrict__ table, const int* __restrict__ tokens,
                                            float* __restrict__ x, int hidden)
{
    const bf16_t* src = table + (long long)tokens[blockIdx.x] * hidden;
    float* dst = x + (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) dst[i] = bf16_to_f32(src[i]);
}

// dst (R, W) bf16 ← src (*, W) bf16 at row rows[r]. grid (R), block (any).
extern "C" __global__ void gather_rows_bf16(const bf16_t* __restrict__ src, const int* __restrict__ rows,
                                            bf16_t* __restrict__ dst, int width)
{
    const bf16_t* s = src + (long long)rows[blockIdx.x] * width;
    bf16_t* d = dst + (long long)blockIdx.x * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) d[i] = s[i];
}
