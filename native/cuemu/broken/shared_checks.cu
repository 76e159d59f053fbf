// Kernels that break the rules of shared memory on purpose, one per check of shared.h (and one
// that keeps them), for the tests that prove each check fires. Emulator only: never compiled for a GPU.
#include "common.cuh"

// out[i] = in[i] + in[i-1] (in[0] twice for i = 0) through shared memory; `barrier` 0 drops the
// __syncthreads between the writes and the neighbour's read (a race). grid (1), block (n ≤ 64).
extern "C" __global__ void shared_neighbour_sum(const float* in, float* out, int barrier)
{
    __shared__ float s[64];
    int t = threadIdx.x;
    s[t] = in[t];
    if (barrier) __syncthreads();
    out[t] = s[t] + s[t > 0 ? t - 1 : 0];
}

// Every thread writes s[t + offset]: with offset 1, the last thread writes one past the array. block (64).
extern "C" __global__ void shared_write_past_end(float* out, int offset)
{
    __shared__ float s[64];
    int t = threadIdx.x;
    s[t + offset] = (float)t;
    __syncthreads();
    out[t] = s[t];
}

// Reads s[t] where only the even threads wrote: the odd ones read what no thread of this block wrote. block (64).
extern "C" __global__ void shared_read_unwritten(float* out)
{
    __shared__ float s[64];
    int t = threadIdx.x;
    if (t % 2 == 0) s[t] = (float)t;
    __syncthreads();
    out[t] = s[t];
}
