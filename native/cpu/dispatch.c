/* CPU feature detection (cpuid + xgetbv) and the run-time ISA level every op dispatches on. */
#include "internal.h"

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static void cpuid(int leaf, int sub, unsigned r[4]) {
    int v[4];
    __cpuidex(v, leaf, sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)v[i];
}
static unsigned long long xgetbv0(void) { return _xgetbv(0); }
#elif defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static void cpuid(int leaf, int sub, unsigned r[4]) { __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]); }
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#define STEER_X86 1
#endif

static uint32_t detect(void) {
#if defined(STEER_X86) || defined(_MSC_VER)
    unsigned r[4];
    cpuid(0, 0, r);
    unsigned max_leaf = r[0];
    if (max_leaf < 7) return 0;
    cpuid(1, 0, r);
    int osxsave = (r[2] >> 27) & 1, fma = (r[2] >> 12) & 1, avx = (r[2] >> 28) & 1;
    if (!osxsave || !avx) return 0;
    unsigned long long xcr0 = xgetbv0();
    int ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
    cpuid(7, 0, r);
    int avx2 = (r[1] >> 5) & 1;
    int f = (r[1] >> 16) & 1, dq = (r[1] >> 17) & 1, bw = (r[1] >> 30) & 1, vl = (r[1] >> 31) & 1;
    cpuid(7, 1, r);
    int bf16 = (r[0] >> 5) & 1;
    uint32_t features = 0;
    if (ymm_os && avx2 && fma) features |= STEER_CPU_AVX2_FMA;
    if ((features & STEER_CPU_AVX2_FMA) && zmm_os && f && dq && bw && vl) features |= STEER_CPU_AVX512;
    if ((features & STEER_CPU_AVX512) && bf16) features |= STEER_CPU_AVX512_BF16;
    return features;
#else
    return 0;
#endif
}

static int g_features = -1;
static int g_isa = -1;

uint32_t steer_cpu_features(void) {
    if (g_features < 0) g_features = (int)detect();
    return (uint32_t)g_features;
}

static int best_isa(void) {
    uint32_t f = steer_cpu_features();
    if (f & STEER_CPU_AVX512_BF16) return STEER_ISA_AVX512_BF16;
    if (f & STEER_CPU_AVX512) return STEER_ISA_AVX512;
    if (f & STEER_CPU_AVX2_FMA) return STEER_ISA_AVX2;
    return STEER_ISA_SCALAR;
}

int steer_cpu_set_isa(int isa) {
    int best = best_isa();
    g_isa = (isa < 0 || isa > best) ? best : isa;
    return g_isa;
}

int steer_cpu_isa(void) { return steer_isa_current(); }

int steer_isa_current(void) {
    if (g_isa < 0) g_isa = best_isa();
    return g_isa;
}
