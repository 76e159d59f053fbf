// Row gathers: the token embedding lookup, picking the rows that need logits, and joining the
// ranks' vocabulary slices of logit rows into whole rows.
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

// out (n, vocab) f32 ← slices (ranks, rows, slice) f32, the all-gathered vocab-parallel logits
// (rank k holds tokens k·slice .. k·slice + slice − 1, the last slice zero-padded past vocab):
// whole rows [0, n) of the vocabulary, as the sampling kernels read them. grid (n), block (any).
extern "C" __global__ void join_vocab_slices(const float* __restrict__ slices, int rows, int slice, int vocab,
                                             float* __restrict__ out)
{
    long long r = blockIdx.x;
    for (int v = threadIdx.x; v < vocab; v += blockDim.x)
        out[r * vocab + v] = slices[((long long)(v / slice) * rows + r) * slice + v % slice];
}
