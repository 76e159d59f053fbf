// SwiGLU: out = silu(gate) · up, from the fused gate|up projection to the down projection's bf16 input.
#include "common.cuh"

// gate_up (T, 2·I) f32: [gate | up] per row; out (T, I) bf16. grid (T), block (any).
extern "C" __global__ void swiglu(const float* __restrict__ gate_up, bf16_t* __restrict__ out, int inter)
{
    const float* g = gate_up + (long long)blockIdx.x * 2 * inter;
    const float* u = g + inter;
    bf16_t* o = out + (long long)blockIdx.x * inter;
    for (int i = threadIdx.x; i < inter; i += blockDim.x) o[i] = f32_to_bf16(g[i] / (1.f + expf(-g[i])) * u[i]);
}
