// Log-softmax of logit rows: the log-partition of each row, the log-prob of a target token, and
// optionally the whole log-softmax row.
#include "common.cuh"

// logits (rows, V) f32; targets (rows) or null; lse (rows) f32 = log Σ exp(logits);
// target_logprob (rows) f32 or null; out (rows, V) f32 or null. grid (rows), block (multiple of 32).
extern "C" __global__ void log_softmax_rows(const float* __restrict__ logits, int vocab, const int* __restrict__ targets,
                                            float* __restrict__ lse, float* __restrict__ target_logprob, float* __restrict__ out)
{
    __shared__ float scratch[32];
    const float* l = logits + (long long)blockIdx.x * vocab;
    float m = -STEER_INF;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, l[i]);
    m = block_max(m, scratch);
    float sum = 0.f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) sum += expf(l[i] - m);
    sum = block_sum(sum, scratch);
    float log_z = m + logf(sum);
    if (threadIdx.x == 0)
    {
        lse[blockIdx.x] = log_z;
        if (targets && target_logprob) target_logprob[blockIdx.x] = l[targets[blockIdx.x]] - log_z;
    }
    if (out)
        for (int i = threadIdx.x; i < vocab; i += blockDim.x) out[(long long)blockIdx.x * vocab + i] = l[i] - log_z;
}
