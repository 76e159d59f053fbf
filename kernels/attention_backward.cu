// Input gradients of causal grouped-query attention over whole sequences (the training forward:
// attention_prefill.cu from position 0), recompute-based in the FlashAttention-2 split: nothing of
// size n² is stored. For query i of head h: P_ij = exp(s_ij − lse_i) with s_ij = scale · q_i·k_j,
// dP_ij = do_i·v_j, D_i = Σ_j P_ij dP_ij, ds_ij = P_ij (dP_ij − D_i); then
// dq_i = scale Σ_j ds_ij k_j (attention_backward_query, one block per query row and head, which also
// keeps lse_i and D_i) and dk_j = scale Σ_i ds_ij q_i, dv_j = Σ_i P_ij do_i summed over the query
// heads of j's KV group (attention_backward_key, one block per key row and KV head). Each block owns
// its outputs: no atomics, the same bits every run. Query head h reads KV head h / (nh / nkv).
#include "common.cuh"

#define ATTN_BWD_MAX_HD 128

// Sequence s: rows row_start[s] .. row_start[s] + n_new[s] − 1, positions 0 ..; its keys and values at
// kv_base[s] → (2, kv_cap[s], kvd) bf16 (layer 0 of rope.cu's cache layout). q (T, qd) bf16 rotated;
// d_out (T, qd) f32; stats (T, nh, 2) f32: lse, D. d_qkv (T, qd + 2·kvd) f32: dq, dk, dv columns.

// a: f32 values (a shared array or a pointer), b: hd bf16 values.
template <typename A>
__device__ __forceinline__ float attn_dot_bf16(A& a, const bf16_t* b, int hd)
{
    float s = 0.f;
    for (int d = 0; d < hd; d++) s += a[d] * bf16_to_f32(b[d]);
    return s;
}

template <typename B>
__device__ __forceinline__ float attn_dot_f32(const float* a, B& b, int hd)
{
    float s = 0.f;
    for (int d = 0; d < hd; d++) s += a[d] * b[d];
    return s;
}

// grid (T, nh), block (32).
extern "C" __global__ void attention_backward_query(const bf16_t* __restrict__ q, const float* __restrict__ d_out,
                                                    const int* __restrict__ seq_of_row, const int* __restrict__ pos_of_row,
                                                    const unsigned long long* __restrict__ kv_base, const int* __restrict__ kv_cap,
                                                    int nh, int nkv, int hd, float scale, float* __restrict__ stats,
                                                    float* __restrict__ d_qkv)
{
    __shared__ float qs[ATTN_BWD_MAX_HD];
    __shared__ float dos[ATTN_BWD_MAX_HD];
    __shared__ float ds[32];
    int r = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    int qd = nh * hd, kvd = nkv * hd, width = qd + 2 * kvd;
    int s = seq_of_row[r], last = pos_of_row[r];
    long long cap = kv_cap[s];
    const bf16_t* K = (const bf16_t*)kv_base[s] + (h / (nh / nkv)) * hd;
    const bf16_t* V = K + cap * kvd;
    for (int d = lane; d < hd; d += 32)
    {
        qs[d] = bf16_to_f32(q[(long long)r * qd + h * hd + d]);
        dos[d] = d_out[(long long)r * qd + h * hd + d];
    }
    __syncthreads();

    // lse over the visible keys, each lane its own keys, merged across the warp.
    float m = -STEER_INF, l = 0.f;
    for (int j = lane; j <= last; j += 32)
    {
        float sc = attn_dot_bf16(qs, K + (long long)j * kvd, hd) * scale;
        if (sc > m) { l = l * expf(m - sc) + 1.f; m = sc; }
        else l += expf(sc - m);
    }
    float m_all = warp_max(m);
    float lse = m_all + logf(warp_sum(m == -STEER_INF ? 0.f : l * expf(m - m_all)));

    float dsum = 0.f;
    for (int j = lane; j <= last; j += 32)
    {
        float p = expf(attn_dot_bf16(qs, K + (long long)j * kvd, hd) * scale - lse);
        dsum += p * attn_dot_bf16(dos, V + (long long)j * kvd, hd);
    }
    float D = warp_sum(dsum);
    if (lane == 0)
    {
        stats[((long long)r * nh + h) * 2] = lse;
        stats[((long long)r * nh + h) * 2 + 1] = D;
    }

    // dq, 32 keys at a time: each lane scores one key, then every lane sums its columns over the 32.
    float acc[ATTN_BWD_MAX_HD / 32] = {};
    for (int j0 = 0; j0 <= last; j0 += 32)
    {
        int j = j0 + lane;
        float g = 0.f;
        if (j <= last)
        {
            float p = expf(attn_dot_bf16(qs, K + (long long)j * kvd, hd) * scale - lse);
            g = p * (attn_dot_bf16(dos, V + (long long)j * kvd, hd) - D) * scale;
        }
        ds[lane] = g;
        __syncthreads();
        int count = min(32, last + 1 - j0);
        for (int t = 0; t < ATTN_BWD_MAX_HD / 32; t++)
        {
            int d = lane + 32 * t;
            if (d >= hd) break;
            for (int jj = 0; jj < count; jj++) acc[t] += ds[jj] * bf16_to_f32(K[(long long)(j0 + jj) * kvd + d]);
        }
        __syncthreads();
    }
    for (int t = 0; t < ATTN_BWD_MAX_HD / 32; t++)
    {
        int d = lane + 32 * t;
        if (d < hd) d_qkv[(long long)r * width + h * hd + d] = acc[t];
    }
}

// Runs after attention_backward_query (it reads stats). grid (T, nkv), block (32).
extern "C" __global__ void attention_backward_key(const bf16_t* __restrict__ q, const float* __restrict__ d_out,
                                                  const int* __restrict__ seq_of_row, const int* __restrict__ pos_of_row,
                                                  const int* __restrict__ row_start, const int* __restrict__ n_new,
                                                  const unsigned long long* __restrict__ kv_base, const int* __restrict__ kv_cap,
                                                  int nh, int nkv, int hd, float scale, const float* __restrict__ stats,
                                                  float* __restrict__ d_qkv)
{
    __shared__ float ks[ATTN_BWD_MAX_HD];
    __shared__ float vs[ATTN_BWD_MAX_HD];
    __shared__ float qs[32][ATTN_BWD_MAX_HD];
    __shared__ float ps[32];
    __shared__ float gs[32];
    int r = blockIdx.x, kvh = blockIdx.y, lane = threadIdx.x;
    int qd = nh * hd, kvd = nkv * hd, width = qd + 2 * kvd, group = nh / nkv;
    int s = seq_of_row[r], j = pos_of_row[r], n = n_new[s], first = row_start[s];
    long long cap = kv_cap[s];
    const bf16_t* K = (const bf16_t*)kv_base[s] + kvh * hd;
    const bf16_t* V = K + cap * kvd;
    for (int d = lane; d < hd; d += 32)
    {
        ks[d] = bf16_to_f32(K[(long long)j * kvd + d]);
        vs[d] = bf16_to_f32(V[(long long)j * kvd + d]);
    }
    __syncthreads();

    float acc_k[ATTN_BWD_MAX_HD / 32] = {}, acc_v[ATTN_BWD_MAX_HD / 32] = {};
    for (int h = kvh * group; h < (kvh + 1) * group; h++)
        for (int i0 = j; i0 < n; i0 += 32)
        {
            // Each lane scores one query against this key, exactly as the query kernel did.
            int i = i0 + lane;
            float p = 0.f, g = 0.f;
            if (i < n)
            {
                long long row = first + i;
                for (int d = 0; d < hd; d++) qs[lane][d] = bf16_to_f32(q[row * qd + h * hd + d]);
                float lse = stats[(row * nh + h) * 2], D = stats[(row * nh + h) * 2 + 1];
                float sc = 0.f;
                for (int d = 0; d < hd; d++) sc += qs[lane][d] * ks[d];
                p = expf(sc * scale - lse);
                g = p * (attn_dot_f32(d_out + row * qd + h * hd, vs, hd) - D) * scale;
            }
            ps[lane] = p;
            gs[lane] = g;
            __syncthreads();
            int count = min(32, n - i0);
            for (int t = 0; t < ATTN_BWD_MAX_HD / 32; t++)
            {
                int d = lane + 32 * t;
                if (d >= hd) break;
                for (int ii = 0; ii < count; ii++)
                {
                    acc_k[t] += gs[ii] * qs[ii][d];
                    acc_v[t] += ps[ii] * d_out[(first + i0 + ii) * (long long)qd + h * hd + d];
                }
            }
            __syncthreads();
        }
    for (int t = 0; t < ATTN_BWD_MAX_HD / 32; t++)
    {
        int d = lane + 32 * t;
        if (d >= hd) continue;
        d_qkv[(long long)r * width + qd + kvh * hd + d] = acc_k[t];
        d_qkv[(long long)r * width + qd + kvd + kvh * hd + d] = acc_v[t];
    }
}
