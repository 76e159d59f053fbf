// The LM head's log-softmax for training, over one rank's slice of the vocabulary (the head is
// vocab-parallel): the forward's per-row partial log-partition, and the backward's logit gradient.
// With z the logits, y the target and lse the whole vocabulary's log-partition, log p(y) = z_y − lse
// and dlogp/dz = onehot(y) − softmax(z). Neither is kept at (rows, V): both run on a chunk of rows.
#include "common.cuh"

// logits (n, vl) f32 of vocabulary columns [first, first + valid) (columns past valid are padding);
// targets (n); stats (n, 3) f32: the slice's max, Σ exp(z − max), and the target's logit (−inf when the
// target is outside the slice). grid (n), block (multiple of 32).
extern "C" __global__ void log_softmax_partial(const float* __restrict__ logits, int vl, int valid, int first,
                                               const int* __restrict__ targets, float* __restrict__ stats)
{
    __shared__ float scratch[32];
    const float* z = logits + (long long)blockIdx.x * vl;
    float m = -STEER_INF;
    for (int i = threadIdx.x; i < valid; i += blockDim.x) m = fmaxf(m, z[i]);
    m = block_max(m, scratch);
    float sum = 0.f;
    for (int i = threadIdx.x; i < valid; i += blockDim.x) sum += expf(z[i] - m);
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0)
    {
        int t = targets[blockIdx.x] - first;
        float* out = stats + (long long)blockIdx.x * 3;
        out[0] = m;
        out[1] = sum;
        out[2] = t >= 0 && t < valid ? z[t] : -STEER_INF;
    }
}

// dz (n, vl) bf16 = d_row · (onehot(target) − exp(z − lse)) on the slice's columns, 0 on the padding.
// lse, d_row (n) f32. grid (n), block (any).
extern "C" __global__ void log_softmax_backward(const float* __restrict__ logits, int vl, int valid, int first,
                                                const int* __restrict__ targets, const float* __restrict__ lse,
                                                const float* __restrict__ d_row, bf16_t* __restrict__ dz)
{
    long long r = blockIdx.x;
    const float* z = logits + r * vl;
    bf16_t* out = dz + r * vl;
    float g = d_row[r], log_z = lse[r];
    int t = targets[r] - first;
    for (int i = threadIdx.x; i < vl; i += blockDim.x)
        out[i] = f32_to_bf16(i < valid ? g * ((i == t ? 1.f : 0.f) - expf(z[i] - log_z)) : 0.f);
}
