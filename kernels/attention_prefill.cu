// Causal grouped-query attention over each sequence's new tokens, flash style: scores and the
// P·V product on tensor cores (mma.sync m16n8k16, bf16 in, f32 accumulate), softmax online in
// registers, K and V read straight from the sequence's cache. Query head h reads KV head
// h / (nh / nkv), as HF's repeat_kv.
#include "common.cuh"

// One warp owns 16 query rows; a block of 4 warps owns 64 rows of one head of one sequence.
// q (T, nh·HD) bf16, rotated; out (T, nh·HD) bf16.
// Sequence s: its new tokens are rows row_start[s] .. row_start[s]+n_new[s]-1, the first at position
// start_pos[s]; its cache (kv_pages, kv_layout: KvPages of common.cuh, kvd = nkv·HD) already holds them.
// grid (ceil(max n / 64), nh, sequences), block (128).
template <int HD>
__device__ __forceinline__ void attention_prefill(const bf16_t* __restrict__ q, bf16_t* __restrict__ out,
                                                  const int* __restrict__ row_start, const int* __restrict__ n_new,
                                                  const int* __restrict__ start_pos,
                                                  const unsigned long long* __restrict__ kv_pages,
                                                  const int* __restrict__ kv_layout, int layer, int nh, int nkv, float scale)
{
    int s = blockIdx.z, h = blockIdx.y, n = n_new[s];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int i0 = blockIdx.x * 64 + warp * 16;
    if (i0 >= n) return; // a whole warp leaves; the block has no barriers
    int qd = nh * HD, kvd = nkv * HD, start = start_pos[s], kv_len = start + n;
    KvPages kv = kv_pages_of(kv_pages, kv_layout, s, layer, kvd);
    int head_offset = (h / (nh / nkv)) * HD;
    const bf16_t* Q = q + (long long)row_start[s] * qd + h * HD;
    int ra = i0 + g, rb = ra + 8; // the two query rows whose elements this lane holds

    unsigned qa[HD / 16][4];
    for (int kk = 0; kk < HD / 16; kk++)
    {
        int c = kk * 16 + 2 * t;
        qa[kk][0] = ra < n ? *(const unsigned*)(Q + (long long)ra * qd + c) : 0u;
        qa[kk][1] = rb < n ? *(const unsigned*)(Q + (long long)rb * qd + c) : 0u;
        qa[kk][2] = ra < n ? *(const unsigned*)(Q + (long long)ra * qd + c + 8) : 0u;
        qa[kk][3] = rb < n ? *(const unsigned*)(Q + (long long)rb * qd + c + 8) : 0u;
    }

    float o[HD / 8][4];
    for (int nd = 0; nd < HD / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    float m[2] = {-STEER_INF, -STEER_INF}, l[2] = {0.f, 0.f};
    int kv_end = start + min(i0 + 15, n - 1) + 1; // keys the warp's last row sees

    for (int kb = 0; kb < kv_end; kb += 16)
    {
        // S (16 rows × 16 keys) = Q · Kᵀ as two 16×8 tiles.
        float sc[2][4];
        for (int nt = 0; nt < 2; nt++)
        {
            sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
            int key = kb + nt * 8 + g;
            for (int kk = 0; kk < HD / 16; kk++)
            {
                unsigned b[2] = {0u, 0u};
                if (key < kv_len)
                {
                    const bf16_t* kr = kv_key(kv, key) + head_offset + kk * 16 + 2 * t;
                    b[0] = *(const unsigned*)kr;
                    b[1] = *(const unsigned*)(kr + 8);
                }
                mma_m16n8k16_bf16(sc[nt], qa[kk], b, sc[nt]);
            }
        }
        // Scale, causal mask, and the online-softmax update of rows ra (j = 0) and rb (j = 1).
        float tile_max[2] = {-STEER_INF, -STEER_INF};
        for (int nt = 0; nt < 2; nt++)
            for (int i = 0; i < 4; i++)
            {
                int key = kb + nt * 8 + 2 * t + (i & 1), row = i < 2 ? ra : rb;
                bool visible = key <= start + row && key < kv_len;
                sc[nt][i] = visible ? sc[nt][i] * scale : -STEER_INF;
                tile_max[i >> 1] = fmaxf(tile_max[i >> 1], sc[nt][i]);
            }
        float corr[2];
        for (int j = 0; j < 2; j++)
        {
            // A row is spread over the 4 lanes of its group.
            tile_max[j] = fmaxf(tile_max[j], __shfl_xor_sync(0xffffffffu, tile_max[j], 1));
            tile_max[j] = fmaxf(tile_max[j], __shfl_xor_sync(0xffffffffu, tile_max[j], 2));
            float m_new = fmaxf(m[j], tile_max[j]);
            corr[j] = m_new == -STEER_INF ? 1.f : expf(m[j] - m_new);
            m[j] = m_new;
        }
        float row_sum[2] = {0.f, 0.f};
        for (int nt = 0; nt < 2; nt++)
            for (int i = 0; i < 4; i++)
            {
                float p = sc[nt][i] == -STEER_INF ? 0.f : expf(sc[nt][i] - m[i >> 1]);
                sc[nt][i] = p;
                row_sum[i >> 1] += p;
            }
        for (int j = 0; j < 2; j++) l[j] = l[j] * corr[j] + row_sum[j];
        for (int nd = 0; nd < HD / 8; nd++)
        {
            o[nd][0] *= corr[0]; o[nd][1] *= corr[0];
            o[nd][2] *= corr[1]; o[nd][3] *= corr[1];
        }

        // O += P · V: the S accumulator layout is exactly the A operand layout of the next mma.
        unsigned pa[4] = {pack_f32x2(sc[0][0], sc[0][1]), pack_f32x2(sc[0][2], sc[0][3]),
                          pack_f32x2(sc[1][0], sc[1][1]), pack_f32x2(sc[1][2], sc[1][3])};
        int k0 = kb + 2 * t;
        const bf16_t* vr0 = k0 < kv_len ? kv_value(kv, k0) + head_offset + g : nullptr;
        const bf16_t* vr1 = k0 + 1 < kv_len ? kv_value(kv, k0 + 1) + head_offset + g : nullptr;
        const bf16_t* vr8 = k0 + 8 < kv_len ? kv_value(kv, k0 + 8) + head_offset + g : nullptr;
        const bf16_t* vr9 = k0 + 9 < kv_len ? kv_value(kv, k0 + 9) + head_offset + g : nullptr;
        for (int nd = 0; nd < HD / 8; nd++)
        {
            bf16_t v0 = vr0 ? vr0[nd * 8] : (bf16_t)0;
            bf16_t v1 = vr1 ? vr1[nd * 8] : (bf16_t)0;
            bf16_t v8 = vr8 ? vr8[nd * 8] : (bf16_t)0;
            bf16_t v9 = vr9 ? vr9[nd * 8] : (bf16_t)0;
            unsigned b[2] = {pack_bf16x2(v0, v1), pack_bf16x2(v8, v9)};
            mma_m16n8k16_bf16(o[nd], pa, b, o[nd]);
        }
    }

    for (int j = 0; j < 2; j++)
    {
        l[j] += __shfl_xor_sync(0xffffffffu, l[j], 1);
        l[j] += __shfl_xor_sync(0xffffffffu, l[j], 2);
    }
    bf16_t* Oa = out + ((long long)row_start[s] + ra) * qd + h * HD;
    bf16_t* Ob = out + ((long long)row_start[s] + rb) * qd + h * HD;
    for (int nd = 0; nd < HD / 8; nd++)
    {
        int c = nd * 8 + 2 * t;
        if (ra < n) { Oa[c] = f32_to_bf16(o[nd][0] / l[0]); Oa[c + 1] = f32_to_bf16(o[nd][1] / l[0]); }
        if (rb < n) { Ob[c] = f32_to_bf16(o[nd][2] / l[1]); Ob[c + 1] = f32_to_bf16(o[nd][3] / l[1]); }
    }
}

#define ATTENTION_PREFILL(HD)                                                                                      \
    extern "C" __global__ void attention_prefill_hd##HD(                                                           \
        const bf16_t* q, bf16_t* out, const int* row_start, const int* n_new, const int* start_pos,                \
        const unsigned long long* kv_pages, const int* kv_layout, int layer, int nh, int nkv, float scale)         \
    {                                                                                                              \
        attention_prefill<HD>(q, out, row_start, n_new, start_pos, kv_pages, kv_layout, layer, nh, nkv, scale);    \
    }
ATTENTION_PREFILL(32)
ATTENTION_PREFILL(64)
ATTENTION_PREFILL(128)
