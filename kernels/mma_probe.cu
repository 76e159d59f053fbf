// One mma.sync tile with its operands loaded from memory by the documented fragment layout: the
// test of the tensor core (the GPU's or the emulated one) against a plain matrix product, and of the layout comment in
// kernels/common.cuh. Not launched by the forward pass; ./build.sh gpu-check runs it on the device.
#include "common.cuh"

// a (16, 16) bf16 row-major, b (16, 8) bf16 row-major (k, n), c and d (16, 8) f32 row-major. grid (1), block (32).
extern "C" __global__ void mma_probe(const bf16_t* a, const bf16_t* b, const float* c, float* d)
{
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    unsigned ra[4] = {pack_bf16x2(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]),
                      pack_bf16x2(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]),
                      pack_bf16x2(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]),
                      pack_bf16x2(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9])};
    unsigned rb[2] = {pack_bf16x2(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]),
                      pack_bf16x2(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g])};
    float rc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
    float rd[4];
    mma_m16n8k16_bf16(rd, ra, rb, rc);
    d[g * 8 + 2 * t] = rd[0];
    d[g * 8 + 2 * t + 1] = rd[1];
    d[(g + 8) * 8 + 2 * t] = rd[2];
    d[(g + 8) * 8 + 2 * t + 1] = rd[3];
}
