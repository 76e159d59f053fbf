// Capture reductions: sums of residual-stream rows by mask (a sequence's prompt, its response,
// its last prompt position...), so a capture sink gets (masks, H) sums instead of the (T, H) states.
#include "common.cuh"

// sums (M, H) f32: sums[m] = Σ x[rows[j]] over j in start[m] .. start[m+1]), accumulated in double
// as the host reducer sums. x (T, H) f32. grid (ceil(H / blockDim), M), block (any).
extern "C" __global__ void sum_rows_by_mask(const float* __restrict__ x, int hidden, const int* __restrict__ start,
                                            const int* __restrict__ rows, float* __restrict__ sums)
{
    int m = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= hidden) return;
    double sum = 0.0;
    for (int j = start[m]; j < start[m + 1]; j++) sum += (double)x[(long long)rows[j] * hidden + i];
    sums[(long long)m * hidden + i] = (float)sum;
}
