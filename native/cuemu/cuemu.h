// What a kernel in kernels/*.cu sees of CUDA when it is compiled by the host compiler: thread and
// block indices, per-block __shared__ storage, __syncthreads, warp shuffles and votes, atomics,
// device math, and the warp-collective mma.sync. Each CUDA thread of a block runs as a fiber on one
// OS thread; barriers and warp collectives switch fibers (see block.cpp).
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <cmath>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
// One OS thread runs one block at a time, so thread-local storage is exactly per-block storage.
#define __shared__ static thread_local
#define __launch_bounds__(...)

struct uint3 { unsigned x, y, z; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct dim3 { unsigned x, y, z; };

namespace cuemu {

struct Lane
{
    uint3 thread_idx;
    int lane;      // 0..31 within its warp
    int linear;    // linear thread index in the block
};

extern thread_local Lane* current_lane;
extern thread_local uint3 block_idx;
extern thread_local dim3 block_dim;
extern thread_local dim3 grid_dim;

void sync_block();
// Collective over the warp: every live lane contributes `bytes` (≤ 64) and, once all have, gets a
// pointer to the 32 contributions (64-byte slots, indexed by lane), valid until its next exchange.
const unsigned char* warp_exchange(const void* mine, int bytes);

template <typename T>
T shuffle_from(T v, int src)
{
    static_assert(sizeof(T) <= 64 && std::is_trivially_copyable<T>::value, "shuffled type");
    const unsigned char* all = warp_exchange(&v, sizeof(T));
    T out;
    memcpy(&out, all + 64 * (src & 31), sizeof(T));
    return out;
}

} // namespace cuemu

#define threadIdx (cuemu::current_lane->thread_idx)
#define blockIdx (cuemu::block_idx)
#define blockDim (cuemu::block_dim)
#define gridDim (cuemu::grid_dim)
static const int warpSize = 32;

inline void __syncthreads() { cuemu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { cuemu::warp_exchange(nullptr, 0); }

template <typename T>
inline T __shfl_sync(unsigned, T v, int src, int width = 32)
{
    int lane = cuemu::current_lane->lane;
    return cuemu::shuffle_from(v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32)
{
    int lane = cuemu::current_lane->lane, src = lane ^ mask;
    return cuemu::shuffle_from(v, src < ((lane & ~(width - 1)) + width) ? src : lane);
}
template <typename T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32)
{
    int lane = cuemu::current_lane->lane, src = lane + (int)delta;
    return cuemu::shuffle_from(v, src < ((lane & ~(width - 1)) + width) ? src : lane);
}
template <typename T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32)
{
    int lane = cuemu::current_lane->lane, src = lane - (int)delta;
    return cuemu::shuffle_from(v, src >= (lane & ~(width - 1)) ? src : lane);
}

unsigned __ballot_sync(unsigned mask, int predicate);
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == __ballot_sync(mask, 1); }

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, fragments as the PTX ISA documents them.
void cuemu_mma_m16n8k16_bf16(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]);

inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline float atomicAdd(float* p, float v)
{
    float old, want;
    __atomic_load(p, &old, __ATOMIC_SEQ_CST);
    do want = old + v;
    while (!__atomic_compare_exchange(p, &old, &want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    return old;
}
inline int atomicMax(int* p, int v) { int old = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return old; }
inline int atomicMin(int* p, int v) { int old = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return old; }
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) { unsigned long long old = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return old; }
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) { unsigned long long old = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return old; }
inline int atomicCAS(int* p, int cmp, int v) { __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return cmp; }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) { __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); return cmp; }
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
