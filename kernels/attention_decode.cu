// Attention of single query rows (decode) with the KV range split across blocks (split-KV, as
// flash-decoding): each block reduces one chunk of the row's own visible keys to a partial
// (max, sum, unnormalised output); attention_decode_combine merges the chunks.
#include "common.cuh"

// q (T, nh·HD) bf16. Row r belongs to sequence seq_of_row[r] at position pos_of_row[r] and sees
// keys 0..pos_of_row[r] of that sequence's cache (layout as in attention_prefill.cu).
// part_o (T, nh, splits, HD) f32, part_ml (T, nh, splits, 2) f32.
// grid (splits, nh, T), block (128): split x covers keys [x·chunk, (x+1)·chunk).
template <int HD>
__device__ __forceinline__ void attention_decode(const bf16_t* __restrict__ q, const int* __restrict__ seq_of_row,
                                                 const int* __restrict__ pos_of_row,
                                                 const unsigned long long* __restrict__ kv_base,
                                                 const int* __restrict__ kv_cap, int layer, int nh, int nkv, float scale,
                                                 int chunk, float* __restrict__ part_o, float* __restrict__ part_ml)
{
    constexpr int PER = HD / 32; // head dims per lane
    __shared__ float sm_m[4];
    __shared__ float sm_l[4];
    __shared__ float sm_acc[4][HD];
    int split = blockIdx.x, h = blockIdx.y, r = blockIdx.z, splits = gridDim.x;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int s = seq_of_row[r], kvd = nkv * HD;
    long long cap = kv_cap[s];
    const bf16_t* K = (const bf16_t*)kv_base[s] + (long long)layer * 2 * cap * kvd + (h / (nh / nkv)) * HD;
    const bf16_t* V = K + cap * kvd;
    const bf16_t* Q = q + (long long)r * nh * HD + h * HD;
    int k0 = split * chunk, k1 = min(k0 + chunk, pos_of_row[r] + 1);

    float qv[PER], acc[PER];
    for (int j = 0; j < PER; j++) { qv[j] = bf16_to_f32(Q[lane + 32 * j]); acc[j] = 0.f; }
    float m = -STEER_INF, l = 0.f;
    for (int key = k0 + warp; key < k1; key += 4)
    {
        const bf16_t* kr = K + (long long)key * kvd;
        float dot = 0.f;
        for (int j = 0; j < PER; j++) dot += qv[j] * bf16_to_f32(kr[lane + 32 * j]);
        dot = warp_sum(dot) * scale;
        float m_new = fmaxf(m, dot), corr = expf(m - m_new), p = expf(dot - m_new);
        l = l * corr + p;
        const bf16_t* vr = V + (long long)key * kvd;
        for (int j = 0; j < PER; j++) acc[j] = acc[j] * corr + p * bf16_to_f32(vr[lane + 32 * j]);
        m = m_new;
    }
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
    for (int j = 0; j < PER; j++) sm_acc[warp][lane + 32 * j] = acc[j];
    __syncthreads();
    if (warp != 0) return;

    float M = fmaxf(fmaxf(sm_m[0], sm_m[1]), fmaxf(sm_m[2], sm_m[3])), L = 0.f;
    for (int j = 0; j < PER; j++) acc[j] = 0.f;
    for (int w = 0; w < 4; w++)
    {
        float f = sm_m[w] == -STEER_INF ? 0.f : expf(sm_m[w] - M);
        L += sm_l[w] * f;
        for (int j = 0; j < PER; j++) acc[j] += sm_acc[w][lane + 32 * j] * f;
    }
    long long part = ((long long)r * nh + h) * splits + split;
    for (int j = 0; j < PER; j++) part_o[part * HD + lane + 32 * j] = acc[j];
    if (lane == 0) { part_ml[part * 2] = M; part_ml[part * 2 + 1] = L; }
}

#define ATTENTION_DECODE(HD)                                                                                       \
    extern "C" __global__ void attention_decode_hd##HD(                                                            \
        const bf16_t* q, const int* seq_of_row, const int* pos_of_row, const unsigned long long* kv_base,          \
        const int* kv_cap, int layer, int nh, int nkv, float scale, int chunk, float* part_o, float* part_ml)      \
    {                                                                                                              \
        attention_decode<HD>(q, seq_of_row, pos_of_row, kv_base, kv_cap, layer, nh, nkv, scale, chunk, part_o,    \
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
