// Per-head RMSNorm (Qwen3, optional) and rotary embedding of Q and K, fused with the write of
// the token's K and V into its sequence's cache. HF "rotate half": element i pairs with i + hd/2;
// the angle is the f32 product position · inv_freq[i] (as HF computes it), its cos/sin in double.
#include "common.cuh"

// qkv (T, qd + 2·kvd) f32, the fused projection of this rank's heads: [q | k | v], qd = nh·hd, kvd = nkv·hd.
// inv_freq (hd/2) f32, llama3 scaling already applied. pos_of_row, seq_of_row (T).
// q_norm, k_norm (hd) f32 or null. q_out (T, qd) bf16.
// Sequence s's cache: kv_pages, kv_layout (KvPages of common.cuh); row r goes to position pos_of_row[r].
// grid (T), block (multiple of 32): one warp per head.
extern "C" __global__ void qk_norm_rope(const float* __restrict__ qkv, const float* __restrict__ inv_freq,
                                        const int* __restrict__ pos_of_row, const int* __restrict__ seq_of_row,
                                        const float* __restrict__ q_norm, const float* __restrict__ k_norm, float eps,
                                        bf16_t* __restrict__ q_out, const unsigned long long* __restrict__ kv_pages,
                                        const int* __restrict__ kv_layout, int layer, int nh, int nkv, int hd)
{
    int r = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int qd = nh * hd, kvd = nkv * hd, half = hd / 2;
    const float* row = qkv + (long long)r * (qd + 2 * kvd);
    int s = seq_of_row[r], p = pos_of_row[r];
    KvPages kv = kv_pages_of(kv_pages, kv_layout, s, layer, kvd);
    bf16_t* k_row = (bf16_t*)kv_key(kv, p);
    bf16_t* v_row = k_row + kv.P * kvd;
    float position = (float)p;

    for (int h = warp; h < nh + nkv; h += warps)
    {
        bool is_q = h < nh;
        const float* x = is_q ? row + h * hd : row + qd + (h - nh) * hd;
        const float* norm = is_q ? q_norm : k_norm;
        float scale = 1.f;
        if (norm)
        {
            float ss = 0.f;
            for (int i = lane; i < hd; i += 32) ss += x[i] * x[i];
            ss = warp_sum(ss);
            scale = 1.f / sqrtf(ss / (float)hd + eps);
        }
        bf16_t* out = is_q ? q_out + (long long)r * qd + h * hd : k_row + (h - nh) * hd;
        for (int i = lane; i < half; i += 32)
        {
            float x1 = x[i], x2 = x[i + half];
            if (norm) { x1 = x1 * scale * norm[i]; x2 = x2 * scale * norm[i + half]; }
            float angle = position * inv_freq[i];
            double sn, cs;
            sincos((double)angle, &sn, &cs);
            float c = (float)cs, sv = (float)sn;
            out[i] = f32_to_bf16(x1 * c - x2 * sv);
            out[i + half] = f32_to_bf16(x2 * c + x1 * sv);
        }
    }
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) v_row[i] = f32_to_bf16(row[qd + kvd + i]);
}
