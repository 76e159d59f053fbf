/* Shared by the kernel files: ISA target attributes, the thread pool's task interface,
 * bf16 rounding and a vectorizable exp. Not part of the public API. */
#ifndef STEER_INTERNAL_H
#define STEER_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "steer_cpu.h"

/* One binary carries every ISA level: the wide kernels are compiled per function for their
 * target, and dispatch.c picks one at run time. MSVC needs no attribute to emit intrinsics. */
#if defined(_MSC_VER) && !defined(__clang__)
#define STEER_TARGET_AVX2
#define STEER_TARGET_AVX512
#define STEER_TARGET_AVX512_BF16
#define STEER_INLINE static __forceinline
#define STEER_RESTRICT __restrict
#else
#define STEER_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define STEER_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,prefer-vector-width=512")))
#define STEER_TARGET_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,prefer-vector-width=512")))
#define STEER_INLINE static inline __attribute__((always_inline))
#define STEER_RESTRICT __restrict__
#endif

#define STEER_MIN(a, b) ((a) < (b) ? (a) : (b))
#define STEER_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Monotonic wall clock in seconds (probe.c). */
double steer_seconds(void);

/* Current ISA level (dispatch.c). */
int steer_isa_current(void);

/* ---- thread pool (threadpool.c) ---- */

/* Runs fn(ctx, task, thread) for task in [0, ntasks) on all threads; returns when all are done.
 * Tasks are handed out dynamically, so a thread slowed by another process takes fewer. */
typedef void (*steer_task_fn)(void* ctx, int task, int thread);
void steer_parallel_for(int ntasks, steer_task_fn fn, void* ctx);
int steer_pool_threads(void); /* starts the default pool if needed */

/* Per-thread scratch, 64-byte aligned, at least `bytes`; grown (rarely) outside the hot path. */
void* steer_thread_scratch(int thread, size_t bytes);
/* Scratch owned by the calling thread for one op (e.g. x rounded to bf16). */
void* steer_call_scratch(size_t bytes);

void* steer_aligned_alloc(size_t bytes);
void steer_aligned_free(void* p);

/* ---- numerics ---- */

/* f32 → bf16, round to nearest even; NaN stays NaN (quiet bit set). Matches BFloat16Convert. */
static inline uint16_t steer_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

static inline float steer_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* exp(x) for f32, branch-free so loops calling it vectorize: 2^(x·log2 e) split into an integer
 * power n (exponent bits) and a degree-6 polynomial on [-ln2/2, ln2/2]; relative error ≤ 2.4e-7
 * over the whole normal range [-87.34, 88.72] (measured against double exp). x < -87.33654
 * (results below FLT_MIN) gives 0, x above ln(FLT_MAX) = 88.7228 gives +inf, NaN stays NaN. From
 * x ≈ 88.37 on, n = 128, whose 2^n is not a float: the scale is applied as 2^min(n,127) times
 * 2^(n - min(n,127)), which is 1 (no change to the bits) for every smaller n. */
STEER_INLINE float steer_expf(float x) {
    int underflow = x < -87.33654f; /* exp(-87.33654) is the last normal result */
    x = underflow ? -87.33654f : x;
    x = x > 89.0f ? 89.0f : x; /* n ≤ 128: exp(89) overflows to +inf through the two scales */
    float t = x * 1.44269504088896341f;
    float r = t + 12582912.0f; /* 1.5·2^23: rounds t to the nearest integer in the low bits */
    int32_t ri;
    memcpy(&ri, &r, 4);
    r -= 12582912.0f;
    /* f = x - r·ln2 in two steps (Cody-Waite) keeps the reduction exact enough. */
    float f = x - r * 0.693145751953125f;
    f = f - r * 1.428606765330187045e-06f;
    float p = 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    p = p * f * f + f + 1.0f;
    int32_t n = ri - 0x4B400000, n1 = n > 127 ? 127 : n; /* the integer r, in [-126, 128] */
    int32_t e1 = (n1 + 127) << 23, e2 = (n - n1 + 127) << 23; /* as biased exponents */
    float scale1, scale2;
    memcpy(&scale1, &e1, 4);
    memcpy(&scale2, &e2, 4);
    float y = p * scale1 * scale2;
    return underflow ? 0.0f : y;
}

/* ---- vector exps (AVX-512, AVX2) ---- */

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define STEER_HAVE_X86 1

/* steer_expf on 8 lanes, the same operations in the same order (no fused multiply-adds), so each
 * lane is bitwise steer_expf of it: GCC does not vectorize the scalar one for AVX2. */
STEER_TARGET_AVX2 STEER_INLINE __m256 steer_expf_avx2(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f), shift = _mm256_set1_ps(12582912.0f);
    __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_blendv_ps(x, lo, underflow);
    x = _mm256_blendv_ps(x, _mm256_set1_ps(89.0f), _mm256_cmp_ps(x, _mm256_set1_ps(89.0f), _CMP_GT_OQ));
    __m256 r = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), shift);
    __m256i ri = _mm256_castps_si256(r);
    r = _mm256_sub_ps(r, shift);
    __m256 f = _mm256_sub_ps(x, _mm256_mul_ps(r, _mm256_set1_ps(0.693145751953125f)));
    f = _mm256_sub_ps(f, _mm256_mul_ps(r, _mm256_set1_ps(1.428606765330187045e-06f)));
    __m256 p = _mm256_set1_ps(1.3981999507e-3f);
    p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, f), _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(p, f), f), f), _mm256_set1_ps(1.0f));
    const __m256i bias = _mm256_set1_epi32(127);
    __m256i n = _mm256_sub_epi32(ri, _mm256_set1_epi32(0x4B400000)), n1 = _mm256_min_epi32(n, bias);
    __m256 scale1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 scale2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, n1), bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, scale1), scale2);
    return _mm256_andnot_ps(underflow, y);
}

/* Flush denormal inputs and results to zero (MXCSR DAZ | FTZ) on this thread until
 * steer_denormals_restore: a softmax over large scores makes exps far below 2^-126, and every
 * op on a denormal costs a microcode assist (measured: attention 40× slower). Returns the old
 * state. */
STEER_INLINE unsigned int steer_denormals_flush(void) {
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);
    return csr;
}
STEER_INLINE void steer_denormals_restore(unsigned int csr) { _mm_setcsr(csr); }

/* 2^f for f in about [-0.5, 0.5]: a degree-6 minimax polynomial, relative error 1.9e-9 before
 * f32 rounding (coefficients from degree 6 down to 1; the constant term is 1). */
#define STEER_EXP2_C6 1.5345812004000534e-4f
#define STEER_EXP2_C5 1.3399931219124377e-3f
#define STEER_EXP2_C4 9.6184889571025133e-3f
#define STEER_EXP2_C3 5.5503287769656406e-2f
#define STEER_EXP2_C2 2.4022646890634405e-1f
#define STEER_EXP2_C1 6.9314720573726729e-1f

/* 2^(n + f) for an integer n and f in about [-0.5, 0.5]: 2^f by the STEER_EXP2 polynomial,
 * then scaled by 2^n with vscalefps, which also gives exact 0 / +inf / denormals outside the
 * normal range. */
STEER_TARGET_AVX512 STEER_INLINE __m512 steer_exp2_parts_avx512(__m512 n, __m512 f) {
    __m512 p = _mm512_set1_ps(STEER_EXP2_C6);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(STEER_EXP2_C5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(STEER_EXP2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(STEER_EXP2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(STEER_EXP2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(STEER_EXP2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* 2^x, 16 lanes: x = n + f with n = round(x) and f = x - n in [-0.5, 0.5] (vreduceps, exact).
 * Relative error ≤ 2 ulp (≈ 1.2e-7) on the normal range; ±inf and NaN as exp2. */
STEER_TARGET_AVX512 STEER_INLINE __m512 steer_exp2_avx512(__m512 x) {
    return steer_exp2_parts_avx512(_mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                   _mm512_reduce_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* e^x, 16 lanes, as 2^(x·log2 e) with the product carried in two floats (hi + lo, the lo part
 * from an FMA residual and log2 e's own rounding error), so the reduction adds no error beyond
 * ~2^-40 relative. Relative error ≤ 2 ulp on the normal range, i.e. at least as accurate as
 * steer_expf (measured: 8.6e-8 here, 2.4e-7 for steer_expf over [-87, 88]); x < -103.3 gives 0
 * (denormals down to there), x > 88.72 gives +inf, -inf gives 0, NaN stays NaN. */
STEER_TARGET_AVX512 STEER_INLINE __m512 steer_exp_avx512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269502162933349609375f);       /* log2 e rounded to f32 */
    const __m512 log2e_lo = _mm512_set1_ps(1.925962991126617468e-8f); /* log2 e - log2e */
    /* Clamped first (NaN passes through): past the range the lo part is no longer small. */
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 hi = _mm512_mul_ps(x, log2e);
    __m512 lo = _mm512_fmsub_ps(x, log2e, hi);
    lo = _mm512_fmadd_ps(x, log2e_lo, lo);
    __m512 n = _mm512_roundscale_ps(hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_add_ps(_mm512_reduce_ps(hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), lo);
    return steer_exp2_parts_avx512(n, f);
}

/* 2^x, 8 lanes (AVX2 has no vscalefps / vreduceps). x is clamped to [-127, 128], then
 * n = round(x) comes from adding 1.5·2^23 (n lands in the low mantissa bits, so the sum's bits
 * are 0x4B400000 + n), f = x - n is exact, and 2^n is built directly as the float with biased
 * exponent n + 127: ((bits + 127) << 23, the 0x4B400000 part shifts out). At the clamp,
 * n = -127 makes that float +0, so everything below about -126.5 (masked scores of -1e30, exps
 * of large negative differences) gives exactly 0, and n = 128 makes it +inf. Relative error
 * ≤ 2 ulp on the normal range (results in [2^-126, 2^127.5)); -inf gives 0, NaN stays NaN. */
STEER_TARGET_AVX2 STEER_INLINE __m256 steer_exp2_avx2(__m256 x) {
    const __m256 round = _mm256_set1_ps(12582912.0f); /* 1.5·2^23 */
    /* max(c, x) and min(c, x) return x when it is NaN */
    x = _mm256_min_ps(_mm256_set1_ps(128.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), x));
    __m256 r = _mm256_add_ps(x, round);
    __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(r, round));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(r), _mm256_set1_epi32(127)), 23));
    __m256 p = _mm256_set1_ps(STEER_EXP2_C6);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(STEER_EXP2_C5));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(STEER_EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(STEER_EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(STEER_EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(STEER_EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(p, scale);
}
#endif

#endif
