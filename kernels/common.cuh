// Shared helpers of the kernels in this folder. The same source compiles three ways:
// NVRTC (device code, __CUDACC_RTC__), nvcc, and the host compiler against native/cuemu/cuemu.h
// (CUEMU), which emulates threads, shared memory, warp collectives and mma.sync on the CPU.
#pragma once
#ifdef CUEMU
#include "cuemu.h"
#endif

// bf16 is carried as its raw 16 bits: NVRTC 11.8 ships no cuda_bf16.h, and the bit operations
// below are exactly what the hardware conversions do (round to nearest even).
typedef unsigned short bf16_t;

#define STEER_INF __int_as_float(0x7f800000)

__device__ __forceinline__ float bf16_to_f32(bf16_t h) { return __uint_as_float(((unsigned)h) << 16); }

__device__ __forceinline__ bf16_t f32_to_bf16(float f)
{
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)0x7fc0; // NaN stays a quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t)(u >> 16);
}

// Two bf16 in one 32-bit register, the lower index in the lower half (the mma operand packing).
__device__ __forceinline__ unsigned pack_bf16x2(bf16_t lo, bf16_t hi) { return (unsigned)lo | ((unsigned)hi << 16); }
__device__ __forceinline__ unsigned pack_f32x2(float lo, float hi) { return pack_bf16x2(f32_to_bf16(lo), f32_to_bf16(hi)); }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. scratch: 32 floats of shared memory (the
// array itself, not a pointer, so the emulator can check each access). blockDim.x must be a
// multiple of 32.
template <typename Scratch>
__device__ __forceinline__ float block_sum(float v, Scratch& scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.f;
    return warp_sum(v);
}

template <typename Scratch>
__device__ __forceinline__ float block_max(float v, Scratch& scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -STEER_INF;
    return warp_max(v);
}

// D = A·B + C on tensor cores, one warp: A 16×16 bf16 (row), B 16×8 bf16 (col), C/D 16×8 f32.
// Fragments as the PTX ISA lays them out for m16n8k16 (g = lane/4, t = lane%4):
//   a[0] = A[g][2t..2t+1]   a[1] = A[g+8][2t..2t+1]   a[2] = A[g][2t+8..2t+9]   a[3] = A[g+8][2t+8..2t+9]
//   b[0] = B[2t..2t+1][g]   b[1] = B[2t+8..2t+9][g]
//   c[0..1] = C[g][2t..2t+1]   c[2..3] = C[g+8][2t..2t+1]
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4])
{
#ifdef CUEMU
    cuemu_mma_m16n8k16_bf16(d, a, b, c);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),
                   "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#endif
}

// A sequence's KV cache as pages. kv_layout (S, 2): sequence s's pages are kv_pages[kv_layout[2s]]
// onward, each (layers, 2, P, kvd) bf16 holding positions [i·P, (i+1)·P), P = kv_layout[2s + 1].
// One page as large as the sequence's capacity is a contiguous cache; fixed-size pages from a
// pool let a sequence grow without a copy. A reader keeps the page it is in and looks the next
// one up only when a position leaves it.
struct KvPages
{
    const unsigned long long* pages; // this sequence's
    long long P;                     // positions per page
    long long layer_offset;          // elements from a page's start to this layer's K rows
    int kvd, lo, hi;                 // the current page holds positions [lo, hi)
    const bf16_t* k;                 // its K rows of this layer
};

__device__ __forceinline__ KvPages kv_pages_of(const unsigned long long* kv_pages, const int* kv_layout, int s, int layer, int kvd)
{
    KvPages c;
    c.pages = kv_pages + kv_layout[2 * s];
    c.P = kv_layout[2 * s + 1];
    c.layer_offset = (long long)layer * 2 * c.P * kvd;
    c.kvd = kvd;
    c.lo = c.hi = 0;
    c.k = nullptr;
    return c;
}

// The K row of position pos; its V row is P·kvd elements further.
__device__ __forceinline__ const bf16_t* kv_key(KvPages& c, int pos)
{
    if (pos < c.lo || pos >= c.hi)
    {
        long long i = pos / c.P;
        c.lo = (int)(i * c.P);
        c.hi = (int)(c.lo + c.P);
        c.k = (const bf16_t*)c.pages[i] + c.layer_offset;
    }
    return c.k + (long long)(pos - c.lo) * c.kvd;
}

__device__ __forceinline__ const bf16_t* kv_value(KvPages& c, int pos) { return kv_key(c, pos) + c.P * c.kvd; }

// The values of steer_op, in SteeringOp's order.
#define STEER_OP_ADD 0
#define STEER_OP_ADD_NORMALIZED 1

// One steering entry on the row xr (hidden wide: a residual row, or the part of an attention row a term
// acts on), by the whole block (every thread with the same arguments). The operations are the CPU
// path's (src/SteerEngine/Runtime/Cpu/SteeringOps.cs), with the sums in f32 block reductions.
// add: xr += m·v. add_normalized: the add, then xr scaled back to its norm before.
// ablate, cap, set: p = xr·v/|v| clamped to [lo, hi], xr += ((clamp(p) − p)/|v|)·v.
// Each thread updates only its own elements, so only the reductions synchronize.
template <typename Scratch>
__device__ __forceinline__ void steer_entry(float* xr, const float* v, int hidden, int op, float mult, float lo, float hi,
                                            Scratch& scratch)
{
    if (op == STEER_OP_ADD)
    {
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) xr[i] = v[i] * mult + xr[i];
    }
    else if (op == STEER_OP_ADD_NORMALIZED)
    {
        float before = 0.f, after = 0.f;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        {
            float y = v[i] * mult + xr[i];
            before += xr[i] * xr[i];
            after += y * y;
            xr[i] = y;
        }
        before = block_sum(before, scratch);
        after = block_sum(after, scratch);
        if (after > 0.f)
        {
            float scale = sqrtf(before / after);
            for (int i = threadIdx.x; i < hidden; i += blockDim.x) xr[i] = xr[i] * scale;
        }
    }
    else
    {
        float vv = 0.f, xv = 0.f;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        {
            vv += v[i] * v[i];
            xv += xr[i] * v[i];
        }
        vv = block_sum(vv, scratch);
        xv = block_sum(xv, scratch);
        float norm = sqrtf(vv), p = xv / norm, step = (fminf(fmaxf(p, lo), hi) - p) / norm;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) xr[i] = v[i] * step + xr[i];
    }
}
