// SwiGLU input gradients: a = silu(g) · u, so du = da · silu(g) and
// dg = da · u · σ(g) · (1 + g · (1 − σ(g))). The forward is swiglu.cu; the output is the bf16
// input of the fused gate|up projection's backward product.
#include "common.cuh"

// gate_up (T, 2·I) f32 [gate | up]; d_act (T, I) f32; d_gate_up (T, 2·I) bf16. grid (T), block (any).
extern "C" __global__ void swiglu_backward(const float* __restrict__ gate_up, const float* __restrict__ d_act,
                                          bf16_t* __restrict__ d_gate_up, int inter)
{
    long long r = blockIdx.x;
    const float* g = gate_up + r * 2 * inter;
    const float* u = g + inter;
    const float* da = d_act + r * inter;
    bf16_t* dg = d_gate_up + r * 2 * inter;
    bf16_t* du = dg + inter;
    for (int i = threadIdx.x; i < inter; i += blockDim.x)
    {
        float s = 1.f / (1.f + expf(-g[i]));
        du[i] = f32_to_bf16(da[i] * g[i] * s);
        dg[i] = f32_to_bf16(da[i] * u[i] * s * (1.f + g[i] * (1.f - s)));
    }
}
