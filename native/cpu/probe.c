/* Machine probes for roofline reporting, all on the full thread pool: streaming read
 * bandwidth, peak f32 FMA and peak bf16 dot-product throughput. */
#include <time.h>

#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define STEER_HAVE_X86 1
#endif

#if defined(_WIN32)
#include <windows.h>
double steer_seconds(void) {
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}
#else
double steer_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
#endif

/* ---- read bandwidth ---- */

typedef struct read_job {
    char* buffer;
    int64_t bytes, chunk;
    int fill;
    uint64_t sink[256];
} read_job;

#ifdef STEER_HAVE_X86
/* Each thread reads its slice as READ_STREAMS interleaved streams, one 64-byte line of each per
 * step with software prefetch ahead, the way a GEMV task reads its panels: a single stream leaves
 * the memory system idle between the prefetcher's requests (on the Zen 3 VM one stream per core
 * read half of what the GEMV reads). */
#define READ_STREAMS 4
#define READ_PREFETCH_BYTES 1024

STEER_TARGET_AVX512 static uint64_t read_avx512(const char* p, int64_t n) {
    int64_t len = n / READ_STREAMS / 64 * 64;
    __m512i a[READ_STREAMS];
    for (int s = 0; s < READ_STREAMS; s++) a[s] = _mm512_setzero_si512();
    for (int64_t i = 0; i < len; i += 64)
        for (int s = 0; s < READ_STREAMS; s++) {
            const char* q = p + s * len + i;
            _mm_prefetch(q + READ_PREFETCH_BYTES, _MM_HINT_T0);
            a[s] = _mm512_xor_si512(a[s], _mm512_load_si512((const void*)q));
        }
    __m512i x = _mm512_xor_si512(_mm512_xor_si512(a[0], a[1]), _mm512_xor_si512(a[2], a[3]));
    return (uint64_t)_mm512_reduce_or_epi64(x);
}

STEER_TARGET_AVX2 static uint64_t read_avx2(const char* p, int64_t n) {
    int64_t len = n / READ_STREAMS / 64 * 64;
    __m256i a[READ_STREAMS];
    for (int s = 0; s < READ_STREAMS; s++) a[s] = _mm256_setzero_si256();
    for (int64_t i = 0; i < len; i += 64)
        for (int s = 0; s < READ_STREAMS; s++) {
            const char* q = p + s * len + i;
            _mm_prefetch(q + READ_PREFETCH_BYTES, _MM_HINT_T0);
            a[s] = _mm256_xor_si256(a[s], _mm256_xor_si256(_mm256_load_si256((const __m256i*)q), _mm256_load_si256((const __m256i*)(q + 32))));
        }
    __m256i x = _mm256_xor_si256(_mm256_xor_si256(a[0], a[1]), _mm256_xor_si256(a[2], a[3]));
    return (uint64_t)_mm256_extract_epi64(x, 0) ^ (uint64_t)_mm256_extract_epi64(x, 3);
}
#endif

static uint64_t read_portable(const char* p, int64_t n) {
    const uint64_t* w = (const uint64_t*)p;
    uint64_t a = 0, b = 0;
    for (int64_t i = 0; i + 2 <= n / 8; i += 2) { a ^= w[i]; b ^= w[i + 1]; }
    return a ^ b;
}

static void read_task(void* ctx, int task, int thread) {
    read_job* j = (read_job*)ctx;
    int64_t start = task * j->chunk, n = STEER_MIN(j->chunk, j->bytes - start);
    char* p = j->buffer + start;
    if (j->fill) { memset(p, task + 1, (size_t)n); return; }
    int isa = steer_isa_current();
    uint64_t v;
#ifdef STEER_HAVE_X86
    if (isa >= STEER_ISA_AVX512) v = read_avx512(p, n);
    else if (isa == STEER_ISA_AVX2) v = read_avx2(p, n);
    else
#endif
        v = read_portable(p, n);
    (void)isa;
    j->sink[thread & 255] ^= v;
}

double steer_probe_read_bandwidth(int64_t bytes, int iters) {
    int threads = steer_pool_threads();
    read_job j;
    memset(&j, 0, sizeof j);
    /* One contiguous slice per thread per pass, so each core streams like a GEMV task. */
    j.chunk = ((bytes / threads) + 4095) / 4096 * 4096;
    j.bytes = j.chunk * threads;
    j.buffer = (char*)steer_aligned_alloc((size_t)j.bytes);
    if (!j.buffer) return 0;
    j.fill = 1; /* first touch in parallel, and no zero pages */
    steer_parallel_for(threads, read_task, &j);
    j.fill = 0;
    steer_parallel_for(threads, read_task, &j); /* warm-up pass */
    /* the fastest pass: on a shared host a pass slowed by other traffic understates the limit */
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        double t0 = steer_seconds();
        steer_parallel_for(threads, read_task, &j);
        double t = steer_seconds() - t0;
        if (t < best) best = t;
    }
    steer_aligned_free(j.buffer);
    return (double)j.bytes / best * 1e-9;
}

/* ---- compute peaks ---- */

#define PEAK_ITERS 4000000
/* Best of this many passes (each a few ms): on a shared host a vCPU can stall for longer than a
 * few passes, and a probe that caught only stalled passes would halve the compute roofline. */
#define PEAK_REPS 12

typedef struct peak_job {
    int bf16;
    double flops[256];
    float sink[256];
} peak_job;

#ifdef STEER_HAVE_X86
/* 12 independent accumulator chains hide the FMA latency on every current core. */
STEER_TARGET_AVX512 static float fma_avx512(int64_t iters, double* flops) {
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
    /* Distinct starting values: identical chains would be merged by the compiler. */
    __m512 c0 = _mm512_set1_ps(0.10f), c1 = _mm512_set1_ps(0.11f), c2 = _mm512_set1_ps(0.12f), c3 = _mm512_set1_ps(0.13f),
           c4 = _mm512_set1_ps(0.14f), c5 = _mm512_set1_ps(0.15f), c6 = _mm512_set1_ps(0.16f), c7 = _mm512_set1_ps(0.17f),
           c8 = _mm512_set1_ps(0.18f), c9 = _mm512_set1_ps(0.19f), c10 = _mm512_set1_ps(0.20f), c11 = _mm512_set1_ps(0.21f);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b); c1 = _mm512_fmadd_ps(c1, a, b); c2 = _mm512_fmadd_ps(c2, a, b);
        c3 = _mm512_fmadd_ps(c3, a, b); c4 = _mm512_fmadd_ps(c4, a, b); c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b); c7 = _mm512_fmadd_ps(c7, a, b); c8 = _mm512_fmadd_ps(c8, a, b);
        c9 = _mm512_fmadd_ps(c9, a, b); c10 = _mm512_fmadd_ps(c10, a, b); c11 = _mm512_fmadd_ps(c11, a, b);
    }
    *flops = (double)iters * 12 * 16 * 2;
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}

STEER_TARGET_AVX2 static float fma_avx2(int64_t iters, double* flops) {
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0.10f), c1 = _mm256_set1_ps(0.11f), c2 = _mm256_set1_ps(0.12f), c3 = _mm256_set1_ps(0.13f),
           c4 = _mm256_set1_ps(0.14f), c5 = _mm256_set1_ps(0.15f), c6 = _mm256_set1_ps(0.16f), c7 = _mm256_set1_ps(0.17f),
           c8 = _mm256_set1_ps(0.18f), c9 = _mm256_set1_ps(0.19f);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b); c1 = _mm256_fmadd_ps(c1, a, b); c2 = _mm256_fmadd_ps(c2, a, b);
        c3 = _mm256_fmadd_ps(c3, a, b); c4 = _mm256_fmadd_ps(c4, a, b); c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b); c7 = _mm256_fmadd_ps(c7, a, b); c8 = _mm256_fmadd_ps(c8, a, b);
        c9 = _mm256_fmadd_ps(c9, a, b);
    }
    *flops = (double)iters * 10 * 8 * 2;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(c8, c9));
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[7];
}

STEER_TARGET_AVX512_BF16 static float dot_bf16(int64_t iters, double* flops) {
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33803380);
    __m512 c0 = _mm512_set1_ps(0.10f), c1 = _mm512_set1_ps(0.11f), c2 = _mm512_set1_ps(0.12f), c3 = _mm512_set1_ps(0.13f),
           c4 = _mm512_set1_ps(0.14f), c5 = _mm512_set1_ps(0.15f), c6 = _mm512_set1_ps(0.16f), c7 = _mm512_set1_ps(0.17f),
           c8 = _mm512_set1_ps(0.18f), c9 = _mm512_set1_ps(0.19f), c10 = _mm512_set1_ps(0.20f), c11 = _mm512_set1_ps(0.21f);
    for (int64_t i = 0; i < iters; i++) {
        c0 = _mm512_dpbf16_ps(c0, a, b); c1 = _mm512_dpbf16_ps(c1, a, b); c2 = _mm512_dpbf16_ps(c2, a, b);
        c3 = _mm512_dpbf16_ps(c3, a, b); c4 = _mm512_dpbf16_ps(c4, a, b); c5 = _mm512_dpbf16_ps(c5, a, b);
        c6 = _mm512_dpbf16_ps(c6, a, b); c7 = _mm512_dpbf16_ps(c7, a, b); c8 = _mm512_dpbf16_ps(c8, a, b);
        c9 = _mm512_dpbf16_ps(c9, a, b); c10 = _mm512_dpbf16_ps(c10, a, b); c11 = _mm512_dpbf16_ps(c11, a, b);
    }
    *flops = (double)iters * 12 * 32 * 2;
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}
#endif

static float fma_portable(int64_t iters, double* flops) {
    float c[8] = {0.10f, 0.11f, 0.12f, 0.13f, 0.14f, 0.15f, 0.16f, 0.17f};
    for (int64_t i = 0; i < iters; i++)
        for (int l = 0; l < 8; l++) c[l] = c[l] * 0.999f + 1e-7f;
    *flops = (double)iters * 8 * 2;
    return c[0] + c[7];
}

static void peak_task(void* ctx, int task, int thread) {
    (void)thread;
    peak_job* j = (peak_job*)ctx;
    int isa = steer_isa_current();
    double flops = 0;
    float v;
#ifdef STEER_HAVE_X86
    if (j->bf16) v = dot_bf16(PEAK_ITERS, &flops);
    else if (isa >= STEER_ISA_AVX512) v = fma_avx512(PEAK_ITERS, &flops);
    else if (isa == STEER_ISA_AVX2) v = fma_avx2(PEAK_ITERS, &flops);
    else
#endif
        v = fma_portable(PEAK_ITERS / 8, &flops);
    (void)isa;
    j->flops[task & 255] = flops;
    j->sink[task & 255] = v;
}

static double peak(int bf16) {
    int threads = steer_pool_threads();
    peak_job j;
    memset(&j, 0, sizeof j);
    j.bf16 = bf16;
    steer_parallel_for(threads, peak_task, &j); /* warm-up: clocks up, threads awake */
    double best = 0;
    for (int rep = 0; rep < PEAK_REPS; rep++) {
        double t0 = steer_seconds();
        steer_parallel_for(threads, peak_task, &j);
        double t = steer_seconds() - t0, flops = 0;
        for (int i = 0; i < threads; i++) flops += j.flops[i];
        if (flops / t > best) best = flops / t;
    }
    return best * 1e-9;
}

double steer_probe_f32_fma_gflops(void) { return peak(0); }

double steer_probe_bf16_dot_gflops(void) {
    if (steer_isa_current() < STEER_ISA_AVX512_BF16) return 0;
    return peak(1);
}
