/* Every fast kernel against its scalar reference on random inputs (never zeros), at shapes that
 * are not multiples of any tile, on every ISA path this CPU has (2 threads), and on the best
 * path with 1 and 3 threads.
 *
 * Tolerances (the fast and reference paths see identical bf16-rounded inputs):
 *   gemm          |Δ| ≤ 2e-5 · Σ|x_i·w_i|  (f32 vs double accumulation; bf16·bf16 products are exact)
 *                 and bit-exact across every path, ISA, thread count and row count (one f32 chain)
 *   rmsnorm       |Δ| ≤ 1e-6 · |ref|       (both sum squares in double)
 *   rope, residual-steer: bit-exact         (same operations in the same order, no contraction)
 *   swiglu        |Δ| ≤ 2e-6 · |ref| + 1e-12 (polynomial exp, < 2e-7 relative)
 *   log_softmax   |Δ| ≤ 2e-5                (values are O(log V))
 *   attention     |Δ| ≤ 2e-5                (outputs are convex combinations of v in [-1, 1])
 *   exp           relative ≤ 2.5e-7 (steer_expf), ≤ 1.5e-7 and no worse than steer_expf (AVX-512);
 *                 at the range's ends (every float near ±87/88.7) the same, +inf past FLT_MAX;
 *                 exp2 ≤ 1.5e-7 (AVX-512, AVX2), and exactly 0 for masked scores (AVX2)
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* steer_cpu.h, and the vector exps tested on their own */

static int failures;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform(void) { /* (0, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Uniform in ±[0.05, 1]·scale, never zero. */
static float nonzero(float scale) {
    double u = uniform() * 0.95 + 0.05;
    return (float)((uniform() < 0.5 ? -u : u) * scale);
}

static float* random_floats(size_t n, float scale) {
    float* p = (float*)malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = nonzero(scale);
    return p;
}

static uint16_t to_bf16(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static double worst_seen[8]; /* per kernel family, reported per ISA */

static int family(const char* what) {
    static const char* names[] = {"gemm", "pack", "rmsnorm", "rope", "swiglu", "residual", "log_softmax", "attention"};
    for (int i = 0; i < 8; i++)
        if (strncmp(what, names[i], strlen(names[i])) == 0) return i;
    return 0;
}

static void check(int ok, const char* what, const char* isa, double err) {
    int f = family(what);
    if (err > worst_seen[f]) worst_seen[f] = err;
    if (!ok) {
        failures++;
        printf("FAIL %-40s isa=%s err=%.3g\n", what, isa, err);
    }
}

static const char* isa_name(int isa) {
    static const char* names[] = {"scalar", "avx2", "avx512", "avx512bf16"};
    return names[isa];
}

static void* aligned(size_t bytes) {
    void* p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) abort();
    return p;
}

static void test_gemm(const char* isa) {
    const int ms[] = {1, 3, 17, 65}, ns[] = {1, 15, 33, 1000}, ks[] = {1, 7, 130, 2049};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 4; c++) {
                int m = ms[a], n = ns[b], k = ks[c];
                float* x = random_floats((size_t)m * k, 2.0f);
                float* wf = random_floats((size_t)n * k, 0.5f);
                uint16_t* w = (uint16_t*)malloc(sizeof(uint16_t) * (size_t)n * k);
                for (size_t i = 0; i < (size_t)n * k; i++) w[i] = to_bf16(wf[i]);
                uint16_t* packed = (uint16_t*)aligned(steer_pack_size(n, k));
                steer_pack_bf16(w, n, k, packed);
                float* y = random_floats((size_t)m * n, 1.0f); /* garbage the GEMM must overwrite */
                float* ref = (float*)malloc(sizeof(float) * (size_t)m * n);
                steer_gemm_bf16(x, m, k, packed, n, y);
                steer_ref_gemm_bf16(x, m, k, packed, n, ref);
                double worst = 0;
                for (int r = 0; r < m; r++)
                    for (int o = 0; o < n; o++) {
                        double mag = 0;
                        for (int i = 0; i < k; i++)
                            mag += fabs((double)from_bf16(to_bf16(x[(size_t)r * k + i])) * from_bf16(w[(size_t)o * k + i]));
                        double err = fabs((double)y[(size_t)r * n + o] - ref[(size_t)r * n + o]) / mag;
                        if (!(err <= worst)) worst = err;
                    }
                char what[96];
                snprintf(what, sizeof what, "gemm m=%d n=%d k=%d", m, n, k);
                check(worst <= 2e-5, what, isa, worst);

                /* packing from f32 equals packing the bf16-rounded matrix */
                if (a == 0) {
                    uint16_t* packed32 = (uint16_t*)aligned(steer_pack_size(n, k));
                    steer_pack_f32(wf, n, k, packed32);
                    snprintf(what, sizeof what, "pack_f32 n=%d k=%d", n, k);
                    check(memcmp(packed, packed32, steer_pack_size(n, k)) == 0, what, isa, 0);
                    free(packed32);
                }
                free(x); free(wf); free(w); free(packed); free(y); free(ref);
            }
}

/* Every GEMM path computes the same f32 chain per output, so y is bitwise the same on every ISA,
 * mode and thread count, and a row's result does not depend on the rows computed with it. */
/* One shape, every ISA, mode and thread count against the scalar path, bit for bit. */
static void gemm_bitwise_shape(int m, int n, int k) {
    float* x = random_floats((size_t)m * k, 3.0f);
    for (size_t i = 0; i < (size_t)m * k; i += 7) x[i] *= 1e-3f; /* a spread of magnitudes */
    float* wf = random_floats((size_t)n * k, 0.5f);
    uint16_t* packed = (uint16_t*)aligned(steer_pack_size(n, k));
    steer_pack_f32(wf, n, k, packed);
    float* base = (float*)malloc(sizeof(float) * (size_t)m * n);
    float* y = (float*)malloc(sizeof(float) * (size_t)m * n);
    int best = steer_cpu_set_isa(-1);
    steer_cpu_set_isa(0);
    steer_gemm_bf16(x, m, k, packed, n, base); /* the scalar path */
    const int thread_counts[] = {1, 2, 3};
    for (int t = 0; t < 3; t++) {
        steer_cpu_init(thread_counts[t]);
        for (int isa = 0; isa <= best; isa++) {
            if (steer_cpu_set_isa(isa) != isa) continue;
            for (int mode = STEER_GEMM_AUTO; mode <= STEER_GEMM_WIDE; mode++) {
                steer_cpu_set_gemm_mode(mode);
                char what[96];
                snprintf(what, sizeof what, "gemm bitwise %dx%dx%d mode=%d threads=%d", m, n, k, mode, thread_counts[t]);
                steer_gemm_bf16(x, m, k, packed, n, y);
                check(memcmp(y, base, sizeof(float) * (size_t)m * n) == 0, what, isa_name(isa), 0);
                /* each row alone, and rows 5..16 as their own call */
                int same = 1;
                for (int r = 0; r < m; r++) {
                    steer_gemm_bf16(x + (size_t)r * k, 1, k, packed, n, y);
                    same &= memcmp(y, base + (size_t)r * n, sizeof(float) * n) == 0;
                }
                steer_gemm_bf16(x + (size_t)5 * k, 12, k, packed, n, y);
                same &= memcmp(y, base + (size_t)5 * n, sizeof(float) * 12 * n) == 0;
                snprintf(what, sizeof what, "gemm bitwise per row %dx%dx%d mode=%d threads=%d", m, n, k, mode, thread_counts[t]);
                check(same, what, isa_name(isa), 0);
            }
        }
    }
    steer_cpu_set_gemm_mode(STEER_GEMM_AUTO);
    steer_cpu_set_isa(best);
    free(x); free(wf); free(packed); free(base); free(y);
}

static void test_gemm_bitwise(void) {
    gemm_bitwise_shape(23, 75, 4133); /* k spans several k blocks of every path (2067 pairs: the dot path's 1024 twice and a short one) */
    /* rows beyond one row chunk, a task's groups beyond one band, a short last k block */
    gemm_bitwise_shape(161, 1000, 301);
}

static void test_pack_f16(void) {
    /* 1.0, -2.5, 65504 (max), 2^-24 (smallest subnormal), 0.333 (f16 0x3555) */
    const uint16_t h[5] = {0x3c00, 0xc100, 0x7bff, 0x0001, 0x3555};
    const float expect[5] = {1.0f, -2.5f, 65504.0f, 5.9604645e-8f, 0.33325195f};
    uint16_t* packed = (uint16_t*)aligned(steer_pack_size(5, 1));
    steer_pack_f16(h, 5, 1, packed);
    for (int r = 0; r < 5; r++)
        check(packed[r * 2] == to_bf16(expect[r]) && packed[r * 2 + 1] == 0, "pack_f16 values", "-", r);
    free(packed);
}

static void test_rmsnorm(const char* isa) {
    const int shapes[][2] = {{1, 2048}, {3, 7}, {17, 130}, {65, 33}};
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], n = shapes[s][1];
        float* x = random_floats((size_t)rows * n, 3.0f);
        float* w = random_floats(n, 1.0f);
        float* y = (float*)malloc(sizeof(float) * rows * n);
        float* ref = (float*)malloc(sizeof(float) * rows * n);
        steer_rmsnorm(x, w, y, rows, n, 1e-5f);
        steer_ref_rmsnorm(x, w, ref, rows, n, 1e-5f);
        double worst = 0;
        for (int i = 0; i < rows * n; i++) {
            double err = fabs((double)y[i] - ref[i]) / fabs(ref[i]);
            if (!(err <= worst)) worst = err;
        }
        check(worst <= 1e-6, "rmsnorm", isa, worst);
        steer_rmsnorm(x, w, x, rows, n, 1e-5f); /* in place */
        check(memcmp(x, y, sizeof(float) * rows * n) == 0, "rmsnorm in place", isa, 0);
        free(x); free(w); free(y); free(ref);
    }
}

static void test_rope(const char* isa) {
    const int shapes[][3] = {{1, 32, 64}, {3, 8, 128}, {17, 5, 6}, {65, 3, 34}}; /* rows, heads, hd */
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], heads = shapes[s][1], hd = shapes[s][2];
        size_t count = (size_t)rows * heads * hd;
        float* x = random_floats(count, 1.0f);
        float* ref = (float*)malloc(sizeof(float) * count);
        memcpy(ref, x, sizeof(float) * count);
        float* inv = (float*)malloc(sizeof(float) * hd / 2);
        for (int i = 0; i < hd / 2; i++) inv[i] = 1.0f / powf(500000.0f, (float)(2 * i) / hd);
        int32_t* pos = (int32_t*)malloc(sizeof(int32_t) * rows);
        for (int r = 0; r < rows; r++) pos[r] = (int32_t)(uniform() * 100000);
        steer_rope(x, rows, heads, hd, pos, inv);
        steer_ref_rope(ref, rows, heads, hd, pos, inv);
        check(memcmp(x, ref, sizeof(float) * count) == 0, "rope bit-exact", isa, 0);
        free(x); free(ref); free(inv); free(pos);
    }
}

static void test_swiglu(const char* isa) {
    const int64_t counts[] = {1, 15, 1000, 65 * 1001};
    for (int s = 0; s < 4; s++) {
        int64_t n = counts[s];
        float* g = random_floats(n, 12.0f);
        float* up = random_floats(n, 2.0f);
        float* ref = (float*)malloc(sizeof(float) * n);
        float* scalar = (float*)malloc(sizeof(float) * n);
        memcpy(ref, g, sizeof(float) * n);
        memcpy(scalar, g, sizeof(float) * n);
        steer_swiglu(g, up, n);
        steer_ref_swiglu(ref, up, n);
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double err = fabs((double)g[i] - ref[i]) / (fabs(ref[i]) + 1e-12);
            if (!(err <= worst)) worst = err;
        }
        check(worst <= 2e-6, "swiglu", isa, worst);
        /* the vector exps are steer_expf lane by lane: every ISA gives the portable path's bits */
        int isa_now = steer_cpu_isa();
        steer_cpu_set_isa(STEER_ISA_SCALAR);
        steer_swiglu(scalar, up, n);
        steer_cpu_set_isa(isa_now);
        check(memcmp(g, scalar, sizeof(float) * n) == 0, "swiglu bit-exact vs portable", isa, 0);
        free(g); free(up); free(ref); free(scalar);
    }
}

static void test_residual(const char* isa) {
    const int shapes[][2] = {{1, 2048}, {3, 7}, {17, 130}, {65, 1000}};
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], h = shapes[s][1];
        size_t count = (size_t)rows * h;
        float* x = random_floats(count, 4.0f);
        float* ref = (float*)malloc(sizeof(float) * count);
        memcpy(ref, x, sizeof(float) * count);
        float* delta = random_floats(count, 1.0f);
        const float* vectors[3];
        float* vs[3];
        for (int v = 0; v < 3; v++) vectors[v] = vs[v] = random_floats(h, 1.0f);
        /* row r gets r % 4 adds: none, one, two of different vectors, three */
        int32_t* offsets = (int32_t*)malloc(sizeof(int32_t) * (rows + 1));
        steer_add* adds = (steer_add*)malloc(sizeof(steer_add) * rows * 3 + 1);
        offsets[0] = 0;
        for (int r = 0; r < rows; r++) {
            offsets[r + 1] = offsets[r];
            for (int a = 0; a < r % 4; a++) {
                steer_add* t = &adds[offsets[r + 1]];
                t->vector = (r + a) % 3;
                t->multiplier = nonzero(8.0f);
                /* every operation somewhere, adds alone on the rows with one term */
                t->op = r % 4 == 1 ? STEER_OP_ADD : (r + a) % 5;
                t->lo = t->op == STEER_OP_ABLATE ? 0.0f : -0.5f;
                t->hi = t->op == STEER_OP_ABLATE ? 0.0f : t->op == STEER_OP_SET ? -0.5f : 0.75f;
                /* the second term of a row acts on a slice (an attention head's), the others on the whole row */
                t->offset = a == 1 ? h / 4 : 0;
                t->width = a == 1 ? h / 2 : 0;
                offsets[r + 1]++;
            }
        }
        steer_residual_add_steered(x, delta, rows, h, offsets, adds, vectors);
        steer_ref_residual_add_steered(ref, delta, rows, h, offsets, adds, vectors);
        check(memcmp(x, ref, sizeof(float) * count) == 0, "residual_add_steered bit-exact", isa, 0);
        steer_residual_add_steered(x, NULL, rows, h, NULL, NULL, NULL); /* neither: no change */
        check(memcmp(x, ref, sizeof(float) * count) == 0, "residual_add_steered no-op", isa, 0);
        free(x); free(ref); free(delta); free(offsets); free(adds);
        for (int v = 0; v < 3; v++) free(vs[v]);
    }
}

static void test_log_softmax(const char* isa) {
    const int shapes[][2] = {{1, 128256}, {3, 7}, {17, 1000}, {65, 33}};
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], v = shapes[s][1];
        size_t count = (size_t)rows * v;
        float* x = random_floats(count, 20.0f);
        float* out = (float*)malloc(sizeof(float) * count);
        float* ref = (float*)malloc(sizeof(float) * count);
        steer_log_softmax(x, out, rows, v);
        steer_ref_log_softmax(x, ref, rows, v);
        double worst = 0;
        for (size_t i = 0; i < count; i++) {
            double err = fabs((double)out[i] - ref[i]);
            if (!(err <= worst)) worst = err;
        }
        check(worst <= 2e-5, "log_softmax", isa, worst);
        free(x); free(out); free(ref);
    }
}

/* One attention call over sequences given as (n, start) pairs, checked against the reference. */
static void attention_case(const char* isa, int nh, int nkv, int hd, const int (*defs)[2], int nseq, const char* label) {
    steer_attn_seq seqs[16];
    float* caches[32];
    int rows = 0;
    for (int s = 0; s < nseq; s++) {
        int len = defs[s][0] + defs[s][1];
        caches[2 * s] = random_floats((size_t)len * nkv * hd, 1.0f);
        caches[2 * s + 1] = random_floats((size_t)len * nkv * hd, 1.0f);
        seqs[s].k = caches[2 * s];
        seqs[s].v = caches[2 * s + 1];
        seqs[s].row = rows;
        seqs[s].n = defs[s][0];
        seqs[s].start = defs[s][1];
        seqs[s].pad_ = 0;
        rows += seqs[s].n;
    }
    size_t count = (size_t)rows * nh * hd;
    float* q = random_floats(count, 2.0f);
    float* out = random_floats(count, 1.0f);
    float* ref = (float*)malloc(sizeof(float) * count);
    steer_attention(q, out, seqs, nseq, nh, nkv, hd);
    steer_ref_attention(q, ref, seqs, nseq, nh, nkv, hd);
    double worst = 0;
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)out[i] - ref[i]);
        if (!(err <= worst)) worst = err;
    }
    char what[128];
    snprintf(what, sizeof what, "attention nh=%d nkv=%d hd=%d %s", nh, nkv, hd, label);
    check(worst <= 2e-5, what, isa, worst);
    free(q); free(out); free(ref);
    for (int i = 0; i < 2 * nseq; i++) free(caches[i]);
}

static void test_attention(const char* isa) {
    /* nh, nkv, hd: group sizes 1, 2, 3, 4, 12, 16, 64; hd multiples of 16 and not (40, 80, 6),
     * and not of 8 past the first vector (20, 36: full 8-float chunks plus a masked tail) */
    const int configs[][3] = {{8, 2, 64}, {6, 6, 40}, {16, 1, 128}, {4, 2, 6},  {12, 4, 40},
                              {32, 8, 64}, {24, 2, 80}, {64, 1, 16}, {9, 3, 20}, {7, 7, 36}};
    /* (n, start): decode at several cache lengths (block edges at 64), prefill from an empty
     * cache and continuing one, and caches long enough to cross many key blocks */
    const int mixed[][2] = {{1, 0}, {1, 100}, {37, 0}, {70, 13}, {5, 200}, {130, 0}, {1, 63}, {1, 64}, {1, 699}, {20, 700}, {3, 45}, {17, 47}};
    const int decode_batch[][2] = {{1, 0}, {1, 1}, {1, 15}, {1, 300}, {1, 999}};
    const int one_decode[][2] = {{1, 699}}; /* a lone sequence: its cache is split into key ranges */
    /* long enough for key ranges over all KV heads on AVX2 with 2 threads (one range per KV
     * head with 3) */
    const int one_long_decode[][2] = {{1, 2999}};
    const int one_prefill[][2] = {{2, 0}};
    for (int c = 0; c < 10; c++) {
        int nh = configs[c][0], nkv = configs[c][1], hd = configs[c][2];
        attention_case(isa, nh, nkv, hd, mixed, 12, "mixed batch");
        attention_case(isa, nh, nkv, hd, decode_batch, 5, "decode batch");
        attention_case(isa, nh, nkv, hd, one_decode, 1, "one decode");
        attention_case(isa, nh, nkv, hd, one_long_decode, 1, "one long decode");
        attention_case(isa, nh, nkv, hd, one_prefill, 1, "prefill n=2");
    }
}

/* The exps against double precision over [-87, 88.3], where steer_expf is finite and exp is a
 * normal f32; the exp2s at x·log2(e) for the same x, where 2^x is normal. */
#define EXP_LO (-87.0f)
#define EXP_HI 88.3f
#define EXP_STEP 0.000731f

static double expf_error(void) {
    double worst = 0;
    for (float x = EXP_LO; x < EXP_HI; x += EXP_STEP) {
        double r = exp((double)x), e = fabs(steer_expf(x) - r) / r;
        if (e > worst) worst = e;
    }
    return worst;
}

#ifdef STEER_HAVE_X86
STEER_TARGET_AVX512 static void exp_errors_avx512(double* vexp, double* vexp2) {
    *vexp = *vexp2 = 0;
    float xs[16];
    int filled = 0;
    for (float x = EXP_LO; x < EXP_HI; x += EXP_STEP) {
        xs[filled++] = x;
        if (filled < 16) continue;
        filled = 0;
        float e[16], e2[16];
        _mm512_storeu_ps(e, steer_exp_avx512(_mm512_loadu_ps(xs)));
        _mm512_storeu_ps(e2, steer_exp2_avx512(_mm512_mul_ps(_mm512_loadu_ps(xs), _mm512_set1_ps(1.4426950408889634f))));
        for (int i = 0; i < 16; i++) {
            double r = exp((double)xs[i]), x2 = (double)(xs[i] * 1.4426950408889634f), r2 = exp2(x2);
            double b = fabs(e[i] - r) / r, c = fabs(e2[i] - r2) / r2;
            if (b > *vexp) *vexp = b;
            if (x2 > -126 && c > *vexp2) *vexp2 = c;
        }
    }
}

STEER_TARGET_AVX2 static double exp2_error_avx2(void) {
    double worst = 0;
    float xs[8];
    int filled = 0;
    for (float x = EXP_LO; x < EXP_HI; x += EXP_STEP) {
        xs[filled++] = x;
        if (filled < 8) continue;
        filled = 0;
        float e2[8];
        _mm256_storeu_ps(e2, steer_exp2_avx2(_mm256_mul_ps(_mm256_loadu_ps(xs), _mm256_set1_ps(1.4426950408889634f))));
        for (int i = 0; i < 8; i++) {
            double x2 = (double)(xs[i] * 1.4426950408889634f), r2 = exp2(x2), c = fabs(e2[i] - r2) / r2;
            if (x2 > -126 && c > worst) worst = c;
        }
    }
    return worst;
}

/* What the AVX2 exp2 gives where softmax inputs leave the normal range: masked scores (-1e30)
 * and deep underflow must be exactly 0 so they add nothing to a sum; ±inf and NaN as exp2. */
STEER_TARGET_AVX2 static int exp2_edges_avx2(void) {
    float in[8] = {-1e30f, -127.0f, -200.0f, -INFINITY, 0.0f, 128.0f, INFINITY, NAN}, out[8];
    _mm256_storeu_ps(out, steer_exp2_avx2(_mm256_loadu_ps(in)));
    return out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f && out[3] == 0.0f && out[4] == 1.0f &&
           out[5] == INFINITY && out[6] == INFINITY && isnan(out[7]);
}
#endif

/* The ends of the range, every float in [-87.5, -87] and [88, 89], each exp variant against double
 * exp: where the result is a normal float, within tol; above ln(FLT_MAX) exactly +inf; below
 * FLT_MIN 0 or a denormal within tol·FLT_MIN. One float lies in each band of ±1e-6 around
 * FLT_MAX, where either a close result or +inf is right. Returns the worst relative error (normal
 * results), or +inf when a result breaks a rule. */
#define EDGE_MAX 200000
static float edge_x[EDGE_MAX], edge_y[EDGE_MAX];
static int edge_n;

static void edge_inputs(void) {
    edge_n = 0;
    for (float x = -87.5f; x <= -87.0f; x = nextafterf(x, INFINITY)) edge_x[edge_n++] = x;
    for (float x = 88.0f; x <= 89.0f; x = nextafterf(x, INFINITY)) edge_x[edge_n++] = x;
}

static double edge_error(double tol) {
    double worst = 0;
    for (int i = 0; i < edge_n; i++) {
        double r = exp((double)edge_x[i]), y = edge_y[i];
        if (r > FLT_MAX * (1 + 1e-6)) {
            if (y != INFINITY) return INFINITY;
        } else if (r < FLT_MIN) {
            if (!(y == 0 || fabs(y - r) <= tol * FLT_MIN)) return INFINITY;
        } else if (r >= FLT_MAX * (1 - 1e-6) && y == INFINITY) {
            continue;
        } else {
            double e = fabs(y - r) / r;
            if (!(e <= tol)) return INFINITY;
            if (e > worst) worst = e;
        }
    }
    return worst;
}

#ifdef STEER_HAVE_X86
/* steer_expf as the AVX-512 kernels compile it (the loop vectorizes under their target). */
STEER_TARGET_AVX512 static void edge_expf_avx512_target(void) {
    for (int i = 0; i < edge_n; i++) edge_y[i] = steer_expf(edge_x[i]);
}

STEER_TARGET_AVX2 static void edge_expf_avx2(void) {
    int i = 0;
    for (; i + 8 <= edge_n; i += 8) _mm256_storeu_ps(edge_y + i, steer_expf_avx2(_mm256_loadu_ps(edge_x + i)));
    for (; i < edge_n; i++) edge_y[i] = steer_expf(edge_x[i]);
}

STEER_TARGET_AVX512 static void edge_exp_avx512(void) {
    int i = 0;
    for (; i + 16 <= edge_n; i += 16) _mm512_storeu_ps(edge_y + i, steer_exp_avx512(_mm512_loadu_ps(edge_x + i)));
    for (; i < edge_n; i++) edge_y[i] = (float)exp((double)edge_x[i]);
}
#endif

static void test_exp_edges(void) {
    edge_inputs();
    for (int i = 0; i < edge_n; i++) edge_y[i] = steer_expf(edge_x[i]);
    double scalar = edge_error(2.5e-7);
    printf("exp edges: steer_expf %.3g\n", scalar);
    check(scalar <= 2.5e-7, "exp edges steer_expf", "scalar", scalar);
    float special[3] = {steer_expf(INFINITY), steer_expf(-INFINITY), steer_expf(NAN)};
    check(special[0] == INFINITY && special[1] == 0 && isnan(special[2]), "exp steer_expf at inf, -inf, NaN", "scalar", 0);
#ifdef STEER_HAVE_X86
    uint32_t features = steer_cpu_features();
    if (features & STEER_CPU_AVX2_FMA) {
        edge_expf_avx2();
        double e = edge_error(2.5e-7);
        check(e <= 2.5e-7, "exp edges steer_expf_avx2", "avx2", e);
    }
    if (features & STEER_CPU_AVX512) {
        edge_expf_avx512_target();
        double e = edge_error(2.5e-7);
        check(e <= 2.5e-7, "exp edges steer_expf (AVX-512 target)", "avx512", e);
        edge_exp_avx512();
        e = edge_error(1.5e-7);
        check(e <= 1.5e-7, "exp edges steer_exp_avx512", "avx512", e);
    }
#endif
}

static void test_exp(void) {
    double scalar = expf_error();
    printf("exp relative error: steer_expf %.3g\n", scalar);
    check(scalar <= 2.5e-7, "exp steer_expf", "scalar", scalar);
#ifdef STEER_HAVE_X86
    uint32_t features = steer_cpu_features();
    if (features & STEER_CPU_AVX512) {
        double vexp, vexp2;
        exp_errors_avx512(&vexp, &vexp2);
        printf("exp relative error: steer_exp_avx512 %.3g, steer_exp2_avx512 %.3g\n", vexp, vexp2);
        check(vexp <= scalar && vexp <= 1.5e-7, "exp steer_exp_avx512", "avx512", vexp);
        check(vexp2 <= 1.5e-7, "exp steer_exp2_avx512", "avx512", vexp2);
    }
    if (features & STEER_CPU_AVX2_FMA) {
        double vexp2 = exp2_error_avx2();
        printf("exp relative error: steer_exp2_avx2 %.3g\n", vexp2);
        check(vexp2 <= 1.5e-7, "exp steer_exp2_avx2", "avx2", vexp2);
        check(exp2_edges_avx2(), "exp steer_exp2_avx2 at -1e30, -127, -200, -inf, 0, 128, inf, NaN", "avx2", 0);
    }
#endif
}

int main(void) {
    uint32_t features = steer_cpu_features();
    printf("features: avx2+fma=%d avx512=%d avx512_bf16=%d\n", !!(features & STEER_CPU_AVX2_FMA),
           !!(features & STEER_CPU_AVX512), !!(features & STEER_CPU_AVX512_BF16));
    test_pack_f16();
    test_gemm_bitwise();
    test_exp();
    test_exp_edges();
    const int thread_counts[] = {2, 1, 3};
    for (int t = 0; t < 3; t++) {
        steer_cpu_init(thread_counts[t]);
        int best = steer_cpu_set_isa(-1);
        int lowest = t == 0 ? 0 : best; /* every ISA with 2 threads; the best one with 1 and 3 */
        for (int isa = best; isa >= lowest; isa--) {
            if (steer_cpu_set_isa(isa) != isa) continue;
            const char* name = isa_name(isa);
            int before = failures;
            memset(worst_seen, 0, sizeof worst_seen);
            /* Both compute paths: vdpbf16ps / in-register widening, and pre-widened blocks. */
            for (int mode = STEER_GEMM_DOT; mode <= (isa >= STEER_ISA_AVX2 ? STEER_GEMM_WIDE : STEER_GEMM_DOT); mode++) {
                steer_cpu_set_gemm_mode(mode);
                test_gemm(mode == STEER_GEMM_WIDE ? "wide" : name);
            }
            steer_cpu_set_gemm_mode(STEER_GEMM_AUTO);
            test_rmsnorm(name);
            test_rope(name);
            test_swiglu(name);
            test_residual(name);
            test_log_softmax(name);
            test_attention(name);
            printf("threads=%d isa=%-10s %s  worst: gemm %.2g rmsnorm %.2g swiglu %.2g log_softmax %.2g attention %.2g\n",
                   steer_cpu_threads(), name, failures == before ? "ok" : "FAILED", worst_seen[0], worst_seen[2], worst_seen[4],
                   worst_seen[6], worst_seen[7]);
        }
    }
    steer_cpu_shutdown();
    printf(failures ? "%d failures\n" : "all passed\n", failures);
    return failures ? 1 : 0;
}
