// Next-token sampling on the device, one row per block, equal to Generation/Sampler.Sample for
// the same uniform draw: greedy (argmax, lowest id on ties), plain temperature sampling in token
// order, or temperature with top-k / top-p / min-p in sorted order (logit descending, id ascending).
// The sort is never materialised: every cut is a binary search over the 64-bit order key
// (logit bits << 32 | ~id), each step one counting or summing pass over the row. Every term is the
// host's: z = (l − max)·(1/T) in float, then exp(z) in double, summed in double — with float sums,
// a flat distribution's (about 1/V per token) cuts moved by a token.
// The draw comes from the sequence's own seeded generator on the host, so a sequence's tokens do
// not depend on its batch neighbours.
#include "common.cuh"

__device__ __forceinline__ unsigned long long order_key(float logit, int i)
{
    unsigned u = __float_as_uint(logit);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); // monotone map of float order to unsigned order
    return ((unsigned long long)u << 32) | (unsigned long long)(0xffffffffu - (unsigned)i);
}

__device__ __forceinline__ int key_token(unsigned long long key) { return (int)(0xffffffffu - (unsigned)(key & 0xffffffffu)); }

template <typename Scratch>
__device__ __forceinline__ unsigned long long block_reduce_u64(unsigned long long v, Scratch& scratch, bool take_max)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1)
    {
        unsigned long long w = __shfl_xor_sync(0xffffffffu, v, o);
        v = take_max ? (w > v ? w : v) : (w < v ? w : v);
    }
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : (take_max ? 0ull : ~0ull);
    for (int o = 16; o > 0; o >>= 1)
    {
        unsigned long long w = __shfl_xor_sync(0xffffffffu, v, o);
        v = take_max ? (w > v ? w : v) : (w < v ? w : v);
    }
    return v;
}

// A term of the host sampler's sums: exp(z) in double of z = (l − max)·(1/T) rounded to float.
__device__ __forceinline__ double sample_term(float logit, float m, float inv_t)
{
    float z = (logit - m) * inv_t;
    return exp((double)z);
}

template <typename Scratch>
__device__ __forceinline__ double block_sum_f64(double v, Scratch& scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Σ over the row of e_i = sample_term(l_i) for the tokens whose key ≥ lo and e_i ≥ min_e.
template <typename Scratch>
__device__ __forceinline__ double mass_at_or_above(const float* l, int vocab, float m, float inv_t,
                                                   unsigned long long lo, double min_e, Scratch& scratch)
{
    double sum = 0.0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        if (order_key(l[i], i) >= lo)
        {
            double e = sample_term(l[i], m, inv_t);
            if (e >= min_e) sum += e;
        }
    return block_sum_f64(sum, scratch);
}

// The repetition penalty of Generation/Sampler.ApplyRepetitionPenalty, before a draw: row r's
// tokens history[start[r] .. start[r+1]) (distinct) are divided by penalty[r] where positive and
// multiplied by it where not. logits (rows, V) f32, updated. grid (rows), block (any).
extern "C" __global__ void repetition_penalty_rows(float* __restrict__ logits, int vocab, const float* __restrict__ penalty,
                                                   const int* __restrict__ start, const int* __restrict__ history)
{
    float p = penalty[blockIdx.x];
    if (p == 1.f) return;
    float* l = logits + (long long)blockIdx.x * vocab;
    for (int j = start[blockIdx.x] + threadIdx.x; j < start[blockIdx.x + 1]; j += blockDim.x)
    {
        int t = history[j];
        float v = l[t];
        l[t] = v > 0.f ? v / p : v * p;
    }
}

// logits (rows, V) f32; per row: temperature (≤ 0 = greedy), top_k (0 = off), top_p (1 = off),
// min_p (0 = off), uniform in [0, 1); token (rows) out. grid (rows), block (multiple of 32, ≤ 1024).
extern "C" __global__ void sample_rows(const float* __restrict__ logits, int vocab, const float* __restrict__ temperature,
                                       const int* __restrict__ top_k, const float* __restrict__ top_p,
                                       const float* __restrict__ min_p, const double* __restrict__ uniform,
                                       int* __restrict__ token)
{
    __shared__ float scratch[32];
    __shared__ double scratchd[32];
    __shared__ unsigned long long scratch64[32];
    __shared__ double prefix[1024];
    __shared__ int chosen;
    int r = blockIdx.x, tid = threadIdx.x;
    const float* l = logits + (long long)r * vocab;

    if (!(temperature[r] > 0.f))
    {
        unsigned long long best = 0;
        for (int i = tid; i < vocab; i += blockDim.x) { unsigned long long k = order_key(l[i], i); best = k > best ? k : best; }
        best = block_reduce_u64(best, scratch64, true);
        if (tid == 0) token[r] = key_token(best);
        return;
    }

    float m = -STEER_INF;
    for (int i = tid; i < vocab; i += blockDim.x) m = fmaxf(m, l[i]);
    m = block_max(m, scratch);
    float inv_t = 1.f / temperature[r];
    int k = top_k[r];
    float p = top_p[r];
    double min_e = min_p[r];
    double u = uniform[r];

    if (k <= 0 && p >= 1.f && min_e <= 0.f)
    {
        // Token order: each thread owns a contiguous chunk; an exclusive scan of the chunk sums
        // finds the chunk where the running sum passes u · Σ.
        int per = (vocab + blockDim.x - 1) / blockDim.x, lo = tid * per, hi = min(lo + per, vocab);
        double part = 0.0;
        float last_nonzero = -1.f;
        for (int i = lo; i < hi; i++)
        {
            double e = sample_term(l[i], m, inv_t);
            part += e;
            if (e > 0.0) last_nonzero = (float)i;
        }
        prefix[tid] = part;
        if (tid == 0) chosen = -1;
        __syncthreads();
        if (tid == 0)
        {
            double run = 0.0;
            for (int x = 0; x < (int)blockDim.x; x++) { double v = prefix[x]; prefix[x] = run; run += v; }
            scratchd[0] = run;
        }
        __syncthreads();
        double total = scratchd[0], target = u * total, acc = prefix[tid];
        if (target >= acc && target < acc + part)
            for (int i = lo; i < hi; i++)
            {
                acc += sample_term(l[i], m, inv_t);
                if (target < acc) { chosen = i; break; }
            }
        last_nonzero = block_max(last_nonzero, scratch);
        __syncthreads();
        if (tid == 0) token[r] = chosen >= 0 ? chosen : (int)last_nonzero;
        return;
    }

    // top-k: the k-th largest key.
    unsigned long long cut = 0;
    if (k > 0 && k < vocab)
        for (int bit = 63; bit >= 0; bit--)
        {
            unsigned long long c = cut | (1ull << bit);
            float count = 0.f;
            for (int i = tid; i < vocab; i += blockDim.x) count += order_key(l[i], i) >= c ? 1.f : 0.f;
            if (block_sum(count, scratch) >= (float)k) cut = c;
        }
    // top-p: the first key (in sorted order) where the mass of the kept tokens reaches p.
    if (p < 1.f)
    {
        double target = (double)p * mass_at_or_above(l, vocab, m, inv_t, cut, 0.0, scratchd);
        unsigned long long cp = 0;
        for (int bit = 63; bit >= 0; bit--)
        {
            unsigned long long c = cp | (1ull << bit);
            if (mass_at_or_above(l, vocab, m, inv_t, c > cut ? c : cut, 0.0, scratchd) >= target) cp = c;
        }
        cut = cp > cut ? cp : cut;
    }
    // min-p keeps e_i ≥ min_p (the top token has e = 1). The draw: the first key in sorted order
    // where the running mass passes u · Σ.
    double target = u * mass_at_or_above(l, vocab, m, inv_t, cut, min_e, scratchd);
    unsigned long long pick = 0;
    bool found = false;
    for (int bit = 63; bit >= 0; bit--)
    {
        unsigned long long c = pick | (1ull << bit);
        if (mass_at_or_above(l, vocab, m, inv_t, c > cut ? c : cut, min_e, scratchd) > target) { pick = c; found = true; }
    }
    if (!found)
    {
        // Rounding put the target past the end: the last kept token, as the host sampler does.
        unsigned long long smallest = ~0ull;
        for (int i = tid; i < vocab; i += blockDim.x)
        {
            unsigned long long key = order_key(l[i], i);
            if (key >= cut && sample_term(l[i], m, inv_t) >= min_e && key < smallest) smallest = key;
        }
        pick = block_reduce_u64(smallest, scratch64, false);
    }
    if (tid == 0) token[r] = key_token(pick);
}

// The count[r] most likely tokens of each row (logit descending, id ascending, as
// TokenLogprob.Top orders them) with their log-probs l − lse[r]: count[r] passes, each the
// largest key below the last one taken. ids, logprob (rows, max_count); rows past count[r] untouched.
// grid (rows), block (multiple of 32, ≤ 1024).
extern "C" __global__ void top_logprobs_rows(const float* __restrict__ logits, int vocab, const int* __restrict__ count,
                                             int max_count, const float* __restrict__ lse, int* __restrict__ ids,
                                             float* __restrict__ logprob)
{
    __shared__ unsigned long long scratch64[32];
    int r = blockIdx.x;
    const float* l = logits + (long long)r * vocab;
    int k = min(min(count[r], max_count), vocab);
    unsigned long long below = ~0ull;
    for (int j = 0; j < k; j++)
    {
        unsigned long long best = 0;
        for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        {
            unsigned long long key = order_key(l[i], i);
            if (key < below && key > best) best = key;
        }
        best = block_reduce_u64(best, scratch64, true);
        if (threadIdx.x == 0)
        {
            int t = key_token(best);
            ids[(long long)r * max_count + j] = t;
            logprob[(long long)r * max_count + j] = l[t] - lse[r];
        }
        below = best;
    }
}
