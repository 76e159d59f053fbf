// Attention of single query rows (decode), FlashDecoding-style: the keys of a row are split into
// chunks across blocks (split-K), and one block serves every query head of a GQA group, so each
// key and value row is read once per group instead of once per query head. A key row is read by
// HD/8 lanes with one 16-byte load each, so a warp has 256/HD keys in flight and a block
// 4 · 256/HD. Each block reduces its chunk to a partial (max, sum, unnormalised output) per query
// head; attention_decode_combine merges the chunks.
#include "common.cuh"

#define DECODE_MAX_GROUP 8 // query heads per KV head the kernel serves (Llama 3 8B: 4, 70B: 8)

// Eight bf16 of one 16-byte load, as f32.
__device__ __forceinline__ void unpack8(uint4 v, float out[8])
{
    unsigned w[4] = {v.x, v.y, v.z, v.w};
    for (int i = 0; i < 4; i++) { out[2 * i] = bf16_to_f32((bf16_t)(w[i] & 0xffffu)); out[2 * i + 1] = bf16_to_f32((bf16_t)(w[i] >> 16)); }
}

// q (T, nh·HD) bf16. Row r belongs to sequence seq_of_row[r] at position pos_of_row[r] and sees
// keys 0..pos_of_row[r] of that sequence's cache (kv_pages, kv_layout: KvPages of common.cuh).
// part_o (T, nh, splits, HD) f32, part_ml (T, nh, splits, 2) f32.
// grid (splits, nkv, T), block (128): split x covers keys [x·chunk, (x+1)·chunk); nh/nkv ≤ DECODE_MAX_GROUP.
template <int HD>
__device__ __forceinline__ void attention_decode(const bf16_t* __restrict__ q, const int* __restrict__ seq_of_row,
                                                 const int* __restrict__ pos_of_row,
                                                 const unsigned long long* __restrict__ kv_pages,
                                                 const int* __restrict__ kv_layout, int layer, int nh, int nkv, float scale,
                                                 int chunk, float* __restrict__ part_o, float* __restrict__ part_ml)
{
    constexpr int LANES = HD / 8;           // lanes per key row (one 16-byte load each)
    constexpr int KEYS_PER_WARP = 32 / LANES;
    constexpr int SLOTS = 4 * KEYS_PER_WARP; // keys in flight per block
    constexpr int G = DECODE_MAX_GROUP;
    __shared__ float sm_m[SLOTS * G];
    __shared__ float sm_l[SLOTS * G];
    __shared__ float sm_acc[SLOTS * G][HD];
    int split = blockIdx.x, kvh = blockIdx.y, r = blockIdx.z, splits = gridDim.x;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, sub = lane / LANES, part = lane % LANES;
    int slot = warp * KEYS_PER_WARP + sub, group = nh / nkv;
    int s = seq_of_row[r], kvd = nkv * HD;
    KvPages kv = kv_pages_of(kv_pages, kv_layout, s, layer, kvd);
    int lane_offset = kvh * HD + part * 8;
    int k0 = split * chunk, k1 = min(k0 + chunk, pos_of_row[r] + 1);

    // This lane's 8 dims of every query head of the group, and its running softmax state per head.
    float qv[G][8], acc[G][8], m[G], l[G];
    for (int g = 0; g < G; g++)
    {
        m[g] = -STEER_INF;
        l[g] = 0.f;
        for (int j = 0; j < 8; j++) { acc[g][j] = 0.f; qv[g][j] = 0.f; }
        if (g < group) unpack8(*(const uint4*)(q + ((long long)r * nh + kvh * group + g) * HD + part * 8), qv[g]);
    }
    // Warp-uniform trip count (the shuffles need every lane); a slot past the chunk's end idles.
    for (int base = k0 + warp * KEYS_PER_WARP; base < k1; base += SLOTS)
    {
        int key = base + sub;
        bool valid = key < k1;
        float kf[8], vf[8];
        if (valid)
        {
            const bf16_t* k_row = kv_key(kv, key) + lane_offset;
            unpack8(*(const uint4*)k_row, kf);
            unpack8(*(const uint4*)(k_row + kv.P * kvd), vf);
        }
        for (int g = 0; g < G; g++)
        {
            if (g >= group) break;
            float dot = 0.f;
            for (int j = 0; j < 8; j++) dot += valid ? qv[g][j] * kf[j] : 0.f;
            for (int o = LANES / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (!valid) continue;
            dot *= scale;
            float m_new = fmaxf(m[g], dot), corr = expf(m[g] - m_new), p = expf(dot - m_new);
            l[g] = l[g] * corr + p;
            for (int j = 0; j < 8; j++) acc[g][j] = acc[g][j] * corr + p * vf[j];
            m[g] = m_new;
        }
    }
    for (int g = 0; g < group; g++)
    {
        if (part == 0) { sm_m[slot * G + g] = m[g]; sm_l[slot * G + g] = l[g]; }
        for (int j = 0; j < 8; j++) sm_acc[slot * G + g][part * 8 + j] = acc[g][j];
    }
    __syncthreads();

    // Merge the slots: thread i takes (head g, dim d) pairs.
    for (int i = threadIdx.x; i < group * HD; i += blockDim.x)
    {
        int g = i / HD, d = i % HD;
        float M = -STEER_INF;
        for (int x = 0; x < SLOTS; x++) M = fmaxf(M, sm_m[x * G + g]);
        float L = 0.f, o = 0.f;
        for (int x = 0; x < SLOTS; x++)
        {
            float mx = sm_m[x * G + g];
            if (mx == -STEER_INF) continue;
            float f = expf(mx - M);
            L += sm_l[x * G + g] * f;
            o += sm_acc[x * G + g][d] * f;
        }
        long long at = ((long long)r * nh + kvh * group + g) * splits + split;
        part_o[at * HD + d] = o;
        if (d == 0) { part_ml[at * 2] = M; part_ml[at * 2 + 1] = L; }
    }
}

#define ATTENTION_DECODE(HD)                                                                                       \
    extern "C" __global__ void attention_decode_hd##HD(                                                            \
        const bf16_t* q, const int* seq_of_row, const int* pos_of_row, const unsigned long long* kv_pages,        \
        const int* kv_layout, int layer, int nh, int nkv, float scale, int chunk, float* part_o, float* part_ml)   \
    {                                                                                                              \
        attention_decode<HD>(q, seq_of_row, pos_of_row, kv_pages, kv_layout, layer, nh, nkv, scale, chunk, part_o, \
                             part_ml);                                                                             \
    }
ATTENTION_DECODE(32)
ATTENTION_DECODE(64)
ATTENTION_DECODE(128)

// out (T, nh·hd) bf16 = Σ_x part_o[x]·e^(m_x − M) / Σ_x l_x·e^(m_x − M). grid (nh, T), block (any).
extern "C" __global__ void attention_decode_combine(const float* __restrict__ part_o, const float* __restrict__ part_ml,
                                                    int splits, int hd, bf16_t* __restrict__ out)
{
    int h = blockIdx.x, r = blockIdx.y, nh = gridDim.x;
    long long base = ((long long)r * nh + h) * splits;
    float M = -STEER_INF;
    for (int x = 0; x < splits; x++) M = fmaxf(M, part_ml[(base + x) * 2]);
    float L = 0.f;
    for (int x = 0; x < splits; x++)
    {
        float mx = part_ml[(base + x) * 2];
        if (mx != -STEER_INF) L += part_ml[(base + x) * 2 + 1] * expf(mx - M);
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x)
    {
        float acc = 0.f;
        for (int x = 0; x < splits; x++)
        {
            float mx = part_ml[(base + x) * 2];
            if (mx != -STEER_INF) acc += part_o[(base + x) * hd + d] * expf(mx - M);
        }
        out[((long long)r * nh + h) * hd + d] = f32_to_bf16(acc / L);
    }
}
