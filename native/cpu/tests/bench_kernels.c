/* Roofline numbers for the kernels at Llama-3.2-1B shapes: the machine probes first, then each
 * kernel's GB/s (weight bytes streamed) and GFLOP/s as fractions of them.
 *   out/native-cpu/bench_kernels [--attention] [threads [gemm mode: 0 auto, 1 bf16 dot, 2 widened f32 [rows,rows,...]]]
 * --attention skips the GEMM benches; with a list of row counts only the GEMMs run, at those m. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "steer_cpu.h"

/* With one thread the kernels run on this thread alone, so its CPU time is the measure: it
 * leaves out the time other work on a shared machine takes the core. */
static int g_single;

static double now(void) {
    struct timespec ts;
    clock_gettime(g_single ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void* aligned(size_t bytes) {
    void* p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) abort();
    return p;
}

/* Best of `reps` timings of f over `iters` calls, in seconds per call. */
#define TIME_BEST(reps, iters, call)                                     \
    ({                                                                   \
        double best_ = 1e30;                                             \
        for (int r_ = 0; r_ < (reps); r_++) {                            \
            double t0_ = now();                                          \
            for (int i_ = 0; i_ < (iters); i_++) { call; }               \
            double t_ = (now() - t0_) / (iters);                         \
            if (t_ < best_) best_ = t_;                                  \
        }                                                                \
        best_;                                                           \
    })

int main(int argc, char** argv) {
    int only_attention = 0;
    if (argc > 1 && strcmp(argv[1], "--attention") == 0) { only_attention = 1; argc--; argv++; }
    int threads = steer_cpu_init(argc > 1 ? atoi(argv[1]) : 0);
    g_single = threads == 1;
    if (argc > 2) steer_cpu_set_gemm_mode(atoi(argv[2])); /* 0 auto, 1 dot, 2 wide */
    printf("threads %d, isa %d\n", threads, steer_cpu_isa());
    double bw = steer_probe_read_bandwidth((int64_t)1 << 30, 5);
    double fma = steer_probe_f32_fma_gflops();
    double dot = steer_probe_bf16_dot_gflops();
    printf("probe: read %.1f GB/s, f32 fma %.0f GFLOP/s, bf16 dot %.0f GFLOP/s\n", bw, fma, dot);
    double peak = fma > dot ? fma : dot; /* the faster of the two compute paths bounds the GEMM */

    const int shapes[][2] = {{2048, 8192}, {8192, 2048}}; /* in, out */
    int ms[16] = {1, 16, 64, 512}, nm = 4;
    if (argc > 3) {
        nm = 0;
        for (char* p = argv[3]; *p && nm < 16; p++) {
            ms[nm++] = (int)strtol(p, &p, 10);
            if (!*p) break;
        }
    }
    for (int s = 0; s < (only_attention ? 0 : 2); s++) {
        int k = shapes[s][0], n = shapes[s][1];
        /* 16 copies of the weights (512 MB) so the m = 1 GEMV streams from memory, not L3. */
        const int copies = 16;
        size_t bytes = steer_pack_size(n, k);
        uint16_t* w = (uint16_t*)malloc(sizeof(uint16_t) * (size_t)n * k);
        for (size_t i = 0; i < (size_t)n * k; i++) w[i] = (uint16_t)(0x3c00 + (i * 2654435761u >> 24) % 512);
        uint16_t* packed[16];
        for (int c = 0; c < copies; c++) { packed[c] = (uint16_t*)aligned(bytes); steer_pack_bf16(w, n, k, packed[c]); }
        free(w);
        for (int mi = 0; mi < nm; mi++) {
            int m = ms[mi];
            float* x = (float*)aligned(sizeof(float) * (size_t)m * k);
            float* y = (float*)aligned(sizeof(float) * (size_t)m * n);
            for (size_t i = 0; i < (size_t)m * k; i++) x[i] = (float)((i % 97) - 48) / 50.0f;
            int iters = m == 1 ? copies * 4 : m <= 64 ? copies : 2;
            int c = 0;
            double t = TIME_BEST(5, iters, steer_gemm_bf16(x, m, k, packed[(c++) % copies], n, y));
            double gbs = bytes / t * 1e-9, gflops = 2.0 * m * n * k / t * 1e-9;
            printf("gemm %5d -> %5d  m=%3d  %8.3f ms  %6.1f GB/s (%3.0f%% of read)  %6.1f GFLOP/s (%3.0f%% of bf16 dot, %3.0f%% of max(dot, fma))\n",
                   k, n, m, t * 1e3, gbs, 100 * gbs / bw, gflops, dot > 0 ? 100 * gflops / dot : 0.0, 100 * gflops / peak);
            free(x);
            free(y);
        }
        for (int c = 0; c < copies; c++) free(packed[c]);
    }

    /* attention, Llama-3.2-1B heads: 32 query heads, 8 KV heads, hd 64 */
    if (argc <= 3) {
        const int nh = 32, nkv = 8, hd = 64;
        int prompt = 512;
        float* k = (float*)aligned(sizeof(float) * prompt * nkv * hd);
        float* v = (float*)aligned(sizeof(float) * prompt * nkv * hd);
        float* q = (float*)aligned(sizeof(float) * prompt * nh * hd);
        float* o = (float*)aligned(sizeof(float) * prompt * nh * hd);
        for (int i = 0; i < prompt * nkv * hd; i++) { k[i] = (float)((i % 13) - 6) / 7; v[i] = (float)((i % 11) - 5) / 6; }
        for (int i = 0; i < prompt * nh * hd; i++) q[i] = (float)((i % 7) - 3) / 4;
        steer_attn_seq seq = {k, v, 0, prompt, 0, 0};
        double t = TIME_BEST(5, 3, steer_attention(q, o, &seq, 1, nh, nkv, hd));
        double flops = 4.0 * nh * hd * (prompt * (prompt + 1) / 2.0);
        printf("attention prefill n=%d: %.3f ms  %.1f GFLOP/s (%.0f%% of f32 fma)\n", prompt, t * 1e3, flops / t * 1e-9,
               100 * flops / t * 1e-9 / fma);
        /* decode: 64 sequences, one token each, caches of 512 */
        const int nseq = 64;
        steer_attn_seq seqs[64];
        for (int s = 0; s < nseq; s++) seqs[s] = (steer_attn_seq){k, v, s, 1, prompt - 1, 0};
        t = TIME_BEST(5, 10, steer_attention(q, o, seqs, nseq, nh, nkv, hd));
        double kv_bytes = 2.0 * nseq * prompt * nkv * hd * 4;
        printf("attention decode 64 seqs x 512 cache: %.3f ms  %.1f GB/s of KV read\n", t * 1e3, kv_bytes / t * 1e-9);
        free(k); free(v); free(q); free(o);
    }
    /* decode from memory: every sequence has its own cache (512 MB in all, past the L3 a core
     * can count on), then one long sequence, which must keep every thread busy on its own */
    {
        const int nh = 32, nkv = 8, hd = 64, nseq = 64, len = 2048, long_len = 32768;
        size_t per = (size_t)len * nkv * hd;
        float* kv = (float*)aligned(sizeof(float) * per * 2 * nseq);
        for (size_t i = 0; i < per * 2 * nseq; i++) kv[i] = (float)((int)(i % 13) - 6) / 7;
        float* q = (float*)aligned(sizeof(float) * nseq * nh * hd);
        float* o = (float*)aligned(sizeof(float) * nseq * nh * hd);
        for (int i = 0; i < nseq * nh * hd; i++) q[i] = (float)((i % 7) - 3) / 4;
        steer_attn_seq seqs[64];
        for (int s = 0; s < nseq; s++) seqs[s] = (steer_attn_seq){kv + per * 2 * s, kv + per * (2 * s + 1), s, 1, len - 1, 0};
        double t = TIME_BEST(3, 2, steer_attention(q, o, seqs, nseq, nh, nkv, hd));
        double bytes = 2.0 * per * nseq * 4;
        printf("attention decode 64 seqs x %d cache, distinct caches: %.3f ms  %.1f GB/s of KV read (%.0f%% of read)\n", len,
               t * 1e3, bytes / t * 1e-9, 100 * bytes / t * 1e-9 / bw);
        steer_attn_seq one = {kv, kv + per * nseq, 0, 1, long_len - 1, 0}; /* K, V: 64 MB each, in the same buffer */
        t = TIME_BEST(3, 2, steer_attention(q, o, &one, 1, nh, nkv, hd));
        bytes = 2.0 * long_len * nkv * hd * 4;
        printf("attention decode 1 seq x %d cache: %.3f ms  %.1f GB/s of KV read (%.0f%% of read)\n", long_len, t * 1e3,
               bytes / t * 1e-9, 100 * bytes / t * 1e-9 / bw);
        free(kv); free(q); free(o);
    }
    steer_cpu_shutdown();
    return 0;
}
