// Input gradient of qk_norm_rope (rope.cu): the rotary embedding undone (a rotation's transpose is
// the rotation by the negative angle, computed exactly as the forward computes it), then, for
// Qwen3, the per-head RMSNorm's backward. The V columns pass through. The output is the bf16
// input of the fused QKV projection's backward product.
#include "common.cuh"

// The pair (i, i + half) of one head's gradient g rotated back by angle: R(−angle) · (g_i, g_{i+half}).
__device__ __forceinline__ void unrotate(const float* g, int i, int half, float angle, float& d1, float& d2)
{
    double sn, cs;
    sincos((double)angle, &sn, &cs);
    float c = (float)cs, s = (float)sn;
    d1 = g[i] * c + g[i + half] * s;
    d2 = g[i + half] * c - g[i] * s;
}

// d_qkv (T, qd + 2·kvd) f32: gradients at the rotated q, rotated k and v; qkv (T, qd + 2·kvd) f32 the
// forward's raw projection (the norms' input); inv_freq (hd/2); pos_of_row (T); q_norm, k_norm (hd) or null.
// out (T, qd + 2·kvd) bf16. grid (T), block (multiple of 32): one warp per head.
extern "C" __global__ void qk_norm_rope_backward(const float* __restrict__ d_qkv, const float* __restrict__ qkv,
                                                 const float* __restrict__ inv_freq, const int* __restrict__ pos_of_row,
                                                 const float* __restrict__ q_norm, const float* __restrict__ k_norm, float eps,
                                                 bf16_t* __restrict__ out, int nh, int nkv, int hd)
{
    int r = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    int qd = nh * hd, kvd = nkv * hd, width = qd + 2 * kvd, half = hd / 2;
    const float* grow = d_qkv + (long long)r * width;
    const float* xrow = qkv + (long long)r * width;
    bf16_t* orow = out + (long long)r * width;
    float position = (float)pos_of_row[r];

    for (int h = warp; h < nh + nkv; h += warps)
    {
        int col = h < nh ? h * hd : qd + (h - nh) * hd;
        const float* g = grow + col;
        const float* x = xrow + col;
        const float* norm = h < nh ? q_norm : k_norm;
        // Pass 1 (norms only): r = 1/sqrt(mean(x²) + eps) and Σ w ⊙ dy ⊙ x, dy the unrotated gradient.
        float scale = 1.f, b = 0.f;
        if (norm)
        {
            float ss = 0.f, dot = 0.f;
            for (int i = lane; i < half; i += 32)
            {
                float d1, d2;
                unrotate(g, i, half, position * inv_freq[i], d1, d2);
                ss += x[i] * x[i] + x[i + half] * x[i + half];
                dot += norm[i] * d1 * x[i] + norm[i + half] * d2 * x[i + half];
            }
            ss = warp_sum(ss);
            dot = warp_sum(dot);
            scale = 1.f / sqrtf(ss / (float)hd + eps);
            b = scale * scale * scale * dot / (float)hd;
        }
        for (int i = lane; i < half; i += 32)
        {
            float d1, d2;
            unrotate(g, i, half, position * inv_freq[i], d1, d2);
            if (norm)
            {
                d1 = scale * norm[i] * d1 - b * x[i];
                d2 = scale * norm[i + half] * d2 - b * x[i + half];
            }
            orow[col + i] = f32_to_bf16(d1);
            orow[col + i + half] = f32_to_bf16(d2);
        }
    }
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) orow[qd + kvd + i] = f32_to_bf16(grow[qd + kvd + i]);
}
