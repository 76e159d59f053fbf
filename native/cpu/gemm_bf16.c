/* y(m, n) = x(m, k) · Wᵀ with W packed bf16 (pack.c), x rounded to bf16 once per call and
 * f32 accumulation.
 *
 * Work split: a task is a run of consecutive groups of NP panels (NP·16 output columns each) ×
 * a chunk of rows; runs shrink toward the end of the call so the threads finish together.
 * Within a group, k is blocked and the rows go in micro-tiles of MR; a micro-kernel keeps
 * MR × NP accumulator registers. For small m the group's panels are read once from memory, as
 * NP contiguous streams with software prefetch (the m = 1 GEMV is bandwidth-bound); for large m
 * the group's k block is widened once into L1/L2 while all row tiles pass over it
 * (compute-bound), and the next group's weights are prefetched meanwhile.
 *
 * Every path computes the same f32 chain for each output: starting from 0, for each k pair in
 * order, acc += x_odd·w_odd then acc += x_even·w_even, one rounding each (bf16·bf16 products
 * are exact in f32), with denormals flushed (DAZ/FTZ): exactly what vdpbf16ps does. k blocks
 * continue the chain from y rather than summing blocks apart. So a row's result is bitwise the
 * same on every path, ISA and row count, and the driver can pick the fastest path per call
 * (DESIGN.md §4: a sampled sequence must not change with its batch neighbours).
 *
 * ISA paths, all on the same packed layout:
 *   AVX512_BF16  vdpbf16ps, x pairs broadcast, MR = 6, NP = 4
 *   AVX-512F     bf16 widened to f32 by shift/mask, FMA, MR = 4, NP = 4
 *   AVX2 + FMA   up to 12 rows: widened in registers as the weights stream (1 row × 4 panels,
 *                3 rows × 2 panels); above: 6 rows × 1 panel f32 FMA over widened blocks, MR = 6, NP = 4
 *   scalar       plain C
 */
#include <stdlib.h>

#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define STEER_HAVE_X86 1
#endif

#define KC 128              /* pairs per k block */
#define MAX_RUNS 256
#define PREFETCH_BYTES 1024 /* software prefetch distance along each panel stream */

typedef struct gemm_job {
    const void* x;       /* (m, 2·pairs): bf16 for the BF16 path, bf16-rounded f32 otherwise */
    const uint16_t* w;   /* packed (panels, pairs, 32) */
    float* y;            /* (m, n) */
    int m, n, pairs, panels;
    int np;              /* panels per task */
    int groups;          /* panel groups along n */
    int runs;            /* tasks along n: run r is groups [run_start[r], run_start[r + 1]) */
    int32_t run_start[MAX_RUNS + 1];
    int row_chunk;       /* rows per task */
    int path;            /* enum gemm_path */
} gemm_job;

/* ---- x → bf16, interleaved by row tile ------------------------------------------------ */

/* x is rounded to bf16 once per call and laid out by row tile of MR rows so that a
 * micro-kernel's broadcasts read one contiguous run per k pair (rows of x lie a multiple of
 * 4 KB apart for the model's widths; read in place they would alias in L1):
 *   bf16 path:   uint32 pair (tile t, pair j, row rr) at (t · pairs + j) · MR + rr
 *   f32 paths:   float (tile t, column i^1, row rr)  at (t · 2·pairs + i) · MR + rr
 *                (each pair odd element first: the order of the accumulation chain)
 * Rows of the last tile past m are zero. */
typedef struct convert_job {
    const float* x;  /* (m, k) */
    void* out;
    int m, k, pairs, widen, mr, tiles_per_task;
} convert_job;

STEER_INLINE void convert_row(const convert_job* j, int r, uint16_t* h /* (2·pairs) scratch */) {
    int kp = 2 * j->pairs, t = r / j->mr, rr = r % j->mr;
    if (j->widen) {
        float* o = (float*)j->out + (size_t)t * kp * j->mr + rr;
        for (int i = 0; i < kp; i++) o[(size_t)i * j->mr] = steer_bf16_to_f32(h[i ^ 1]);
    } else {
        uint32_t* o = (uint32_t*)j->out + (size_t)t * j->pairs * j->mr + rr;
        for (int p = 0; p < j->pairs; p++) o[(size_t)p * j->mr] = (uint32_t)h[2 * p] | (uint32_t)h[2 * p + 1] << 16;
    }
}

/* Each wide path rounds the row's first k / 16 · 16 floats and returns how many it did; the rest
 * of the row and the zero padding go through steer_f32_to_bf16 in convert_task. */
#ifdef STEER_HAVE_X86
STEER_TARGET_AVX512 static int round_row_avx512(const float* xr, int k, uint16_t* h) {
    const __m512i round = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 f = _mm512_loadu_ps(xr + i);
        __m512i bits = _mm512_castps_si512(f), kept = _mm512_srli_epi32(bits, 16);
        __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, round), _mm512_and_si512(kept, one)), 16);
        __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
        _mm256_storeu_si256((__m256i*)(h + i), _mm512_cvtepi32_epi16(_mm512_mask_or_epi32(rounded, nan, kept, quiet)));
    }
    return i;
}

/* The same rounding at 256 bits, two halves of 8 per step (packus works per 128-bit lane:
 * [a0 b0 | a1 b1], so the quadwords are reordered to a0 a1 b0 b1). */
STEER_TARGET_AVX2 static int round_row_avx2(const float* xr, int k, uint16_t* h) {
    const __m256i round = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x40);
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        __m256i packed[2];
        for (int half = 0; half < 2; half++) {
            __m256 f = _mm256_loadu_ps(xr + i + 8 * half);
            __m256i bits = _mm256_castps_si256(f), kept = _mm256_srli_epi32(bits, 16);
            __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, round), _mm256_and_si256(kept, one)), 16);
            __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
            packed[half] = _mm256_blendv_epi8(rounded, _mm256_or_si256(kept, quiet), nan);
        }
        _mm256_storeu_si256((__m256i*)(h + i), _mm256_permute4x64_epi64(_mm256_packus_epi32(packed[0], packed[1]), 0xd8));
    }
    return i;
}
#endif

static void convert_task(void* ctx, int task, int thread) {
    const convert_job* j = (const convert_job*)ctx;
    int r0 = task * j->tiles_per_task * j->mr;
    int r1 = STEER_MIN((j->m + j->mr - 1) / j->mr * j->mr, r0 + j->tiles_per_task * j->mr);
    uint16_t* h = (uint16_t*)steer_thread_scratch(thread, sizeof(uint16_t) * 2 * (size_t)j->pairs);
    int isa = steer_isa_current();
    for (int r = r0; r < r1; r++) {
        const float* xr = j->x + (size_t)r * j->k;
        int i = 0;
#ifdef STEER_HAVE_X86
        if (r < j->m && isa >= STEER_ISA_AVX512) i = round_row_avx512(xr, j->k, h);
        else if (r < j->m && isa == STEER_ISA_AVX2) i = round_row_avx2(xr, j->k, h);
#endif
        for (; i < 2 * j->pairs; i++) h[i] = r < j->m && i < j->k ? steer_f32_to_bf16(xr[i]) : 0;
        convert_row(j, r, h);
    }
    (void)isa;
}

static void* convert_x(const float* x, int m, int k, int pairs, int widen, int mr) {
    int tiles = (m + mr - 1) / mr;
    size_t bytes = (size_t)tiles * mr * 2 * pairs * (widen ? 4 : 2);
    convert_job j = {x, steer_call_scratch(bytes), m, k, pairs, widen, mr, 0};
    int tasks = (size_t)m * k < (1 << 16) ? 1 : STEER_MIN(tiles, 4 * steer_pool_threads());
    j.tiles_per_task = (tiles + tasks - 1) / tasks;
    steer_parallel_for((tiles + j.tiles_per_task - 1) / j.tiles_per_task, convert_task, &j);
    return j.out;
}

/* ---- output tiles -------------------------------------------------------------------- */

/* Columns of panel p that exist in y: 16, or fewer in the last panel. */
STEER_INLINE int panel_cols(int ncols, int p) { return STEER_MAX(0, STEER_MIN(16, ncols - 16 * p)); }

#ifdef STEER_HAVE_X86
STEER_INLINE STEER_TARGET_AVX512 __mmask16 cols_mask(int cols) { return (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1); }

/* The chain's start for 16 columns of y: 0 in the first k block, y's partial sum after it. */
STEER_INLINE STEER_TARGET_AVX512 __m512 chain_start(const float* yp, int cols, int accumulate) {
    return accumulate && cols > 0 ? _mm512_maskz_loadu_ps(cols_mask(cols), yp) : _mm512_setzero_ps();
}

STEER_INLINE STEER_TARGET_AVX512 void chain_store(float* yp, int cols, __m512 v) {
    if (cols > 0) _mm512_mask_storeu_ps(yp, cols_mask(cols), v);
}
#endif

/* ---- AVX512_BF16 ---------------------------------------------------------------------- */

#ifdef STEER_HAVE_X86
#define BF16_MR 6
#define BF16_NP 4
/* Pairs per k block: a 4-panel block is 256 KB, in L2 (1 MB per core on Zen 4) beside the row
 * tiles' x slices while every row tile passes over it. Long blocks mean few y round trips; with
 * 128-pair blocks the same GEMM ran at 80 % of the one-core peak instead of 91 % (m = 64). */
#define KC_DOT 1024

/* prefetch: 0 none; 1 the weights it reads, PREFETCH_BYTES ahead along each panel stream (the
 * first row tile of a block, which brings the block in); 2 one line of `pf` per pair, into L2
 * (a later row tile fetching one panel of the weights the task reads next); 3 the same for four
 * panels from `pf`, ws elements apart (where there are fewer later row tiles than panels). */
STEER_INLINE STEER_TARGET_AVX512_BF16 void kernel_bf16(
    const int MR, const int NP, const uint32_t* x /* (kc, MR) pairs of the row tile */,
    const uint16_t* w /* NP panels, stride ws elements */, size_t ws, int kc,
    float* y /* (MR, ldy) */, int ldy, int ncols, int accumulate, const int prefetch, const char* pf) {
    __m512 c[BF16_MR][BF16_NP];
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) c[r][p] = chain_start(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), accumulate);
    for (int j = 0; j < kc; j++) {
        __m512i b[BF16_NP];
        for (int p = 0; p < NP; p++) {
            b[p] = _mm512_load_si512((const void*)(w + p * ws + (size_t)j * 32));
            if (prefetch == 1) _mm_prefetch((const char*)(w + p * ws + (size_t)j * 32) + PREFETCH_BYTES, _MM_HINT_T0);
        }
        if (prefetch == 2) _mm_prefetch(pf + (size_t)j * 64, _MM_HINT_T1);
        if (prefetch == 3)
            for (int p = 0; p < BF16_NP; p++) _mm_prefetch(pf + 2 * p * ws + (size_t)j * 64, _MM_HINT_T1);
        for (int r = 0; r < MR; r++) {
            __m512i a = _mm512_set1_epi32((int)x[(size_t)j * BF16_MR + r]);
            for (int p = 0; p < NP; p++) c[r][p] = _mm512_dpbf16_ps(c[r][p], (__m512bh)a, (__m512bh)b[p]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) chain_store(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), c[r][p]);
}

/* The prefetch mode is a constant in every instantiation: a run-time branch in the loop makes
 * GCC spill the weight registers. */
#define BF16_CALL(MR_, NP_)                                                                   \
    (pf == 1   ? kernel_bf16(MR_, NP_, xp, wp, ws, kc, yp, n, ncols, kb > 0, 1, NULL)         \
     : pf == 2 ? kernel_bf16(MR_, NP_, xp, wp, ws, kc, yp, n, ncols, kb > 0, 2, next)         \
     : pf == 3 ? kernel_bf16(MR_, NP_, xp, wp, ws, kc, yp, n, ncols, kb > 0, 3, next)         \
               : kernel_bf16(MR_, NP_, xp, wp, ws, kc, yp, n, ncols, kb > 0, 0, NULL))
#define BF16_ROWS(NP_)                                  \
    switch (mr) {                                       \
    case 6: BF16_CALL(6, NP_); break;                   \
    case 5: BF16_CALL(5, NP_); break;                   \
    case 4: BF16_CALL(4, NP_); break;                   \
    case 3: BF16_CALL(3, NP_); break;                   \
    case 2: BF16_CALL(2, NP_); break;                   \
    default: BF16_CALL(1, NP_); break;                  \
    }

/* next_p0: the first panel of the group this thread computes next, or -1. The first row tile
 * of a block streams it from memory; the next tiles prefetch the block that follows (this
 * group's next k block, else the next group's first) into L2, one panel each, or with fewer
 * tiles than panels all of it in the second tile, so that no tile but the first waits on memory. */
STEER_TARGET_AVX512_BF16 static void task_bf16(const gemm_job* job, int p0, int np, int r0, int r1, int next_p0) {
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    int ncols = n - 16 * p0;
    for (int kb = 0; kb < pairs; kb += KC_DOT) {
        int kc = STEER_MIN(KC_DOT, pairs - kb);
        const uint16_t* wp = job->w + (size_t)p0 * ws + (size_t)kb * 32;
        /* The block after this one: panels [q0, q0 + nq) from pair qb. */
        int last = kb + KC_DOT >= pairs, q0 = last ? next_p0 : p0, qb = last ? 0 : kb + KC_DOT;
        int nq = q0 < 0 ? 0 : STEER_MIN(BF16_NP, job->panels - q0);
        int later = (r1 - r0 + BF16_MR - 1) / BF16_MR - 1, all = nq > later; /* row tiles after the first */
        for (int r = r0, t = 0; r < r1; r += BF16_MR, t++) {
            int mr = STEER_MIN(BF16_MR, r1 - r);
            int pf = t == 0 ? 1 : all ? (t == 1 ? 3 : 0) : t <= nq ? 2 : 0;
            const char* next = pf >= 2 ? (const char*)(job->w + (size_t)(q0 + (pf == 2 ? t - 1 : 0)) * ws + (size_t)qb * 32) : NULL;
            const uint32_t* xp = (const uint32_t*)job->x + ((size_t)(r / BF16_MR) * pairs + kb) * BF16_MR;
            float* yp = job->y + (size_t)r * n + 16 * p0;
            switch (np) {
            case 4: BF16_ROWS(4) break;
            case 3: BF16_ROWS(3) break;
            case 2: BF16_ROWS(2) break;
            default: BF16_ROWS(1) break;
            }
        }
    }
}

/* ---- AVX-512F ------------------------------------------------------------------------- */

#define F32_MR 4
#define F32_NP 4

STEER_INLINE STEER_TARGET_AVX512 void kernel_avx512(
    const int MR, const int NP, const float* x /* (2·kc, MR) bf16-exact f32 of the row tile */,
    const uint16_t* w, size_t ws, int kc, float* y, int ldy, int ncols, int accumulate, int prefetch) {
    __m512 c[F32_MR][F32_NP];
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) c[r][p] = chain_start(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), accumulate);
    for (int j = 0; j < kc; j++) {
        __m512 even[F32_NP], odd[F32_NP];
        for (int p = 0; p < NP; p++) {
            __m512i b = _mm512_load_si512((const void*)(w + p * ws + (size_t)j * 32));
            if (prefetch) _mm_prefetch((const char*)(w + p * ws + (size_t)j * 32) + PREFETCH_BYTES, _MM_HINT_T0);
            even[p] = _mm512_castsi512_ps(_mm512_slli_epi32(b, 16));
            odd[p] = _mm512_castsi512_ps(_mm512_and_si512(b, high));
        }
        for (int r = 0; r < MR; r++) {
            __m512 xo = _mm512_set1_ps(x[(size_t)2 * j * F32_MR + r]), xe = _mm512_set1_ps(x[(size_t)(2 * j + 1) * F32_MR + r]);
            for (int p = 0; p < NP; p++) c[r][p] = _mm512_fmadd_ps(xe, even[p], _mm512_fmadd_ps(xo, odd[p], c[r][p]));
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) chain_store(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), c[r][p]);
}

#define F32_CALL(MR_, NP_) \
    (pf ? kernel_avx512(MR_, NP_, xp, wp, ws, kc, yp, n, ncols, kb > 0, 1) \
        : kernel_avx512(MR_, NP_, xp, wp, ws, kc, yp, n, ncols, kb > 0, 0))
#define F32_ROWS(NP_)                                   \
    switch (mr) {                                       \
    case 4: F32_CALL(4, NP_); break;                    \
    case 3: F32_CALL(3, NP_); break;                    \
    case 2: F32_CALL(2, NP_); break;                    \
    default: F32_CALL(1, NP_); break;                   \
    }

STEER_TARGET_AVX512 static void task_avx512(const gemm_job* job, int p0, int np, int r0, int r1) {
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    int ncols = n - 16 * p0;
    for (int kb = 0; kb < pairs; kb += KC) {
        int kc = STEER_MIN(KC, pairs - kb);
        const uint16_t* wp = job->w + (size_t)p0 * ws + (size_t)kb * 32;
        for (int r = r0; r < r1; r += F32_MR) {
            int mr = STEER_MIN(F32_MR, r1 - r), pf = r == r0;
            const float* xp = (const float*)job->x + ((size_t)(r / F32_MR) * 2 * pairs + 2 * kb) * F32_MR;
            float* yp = job->y + (size_t)r * n + 16 * p0;
            switch (np) {
            case 4: F32_ROWS(4) break;
            case 3: F32_ROWS(3) break;
            case 2: F32_ROWS(2) break;
            default: F32_ROWS(1) break;
            }
        }
    }
}

/* ---- AVX2 + FMA ----------------------------------------------------------------------- */

/* 16 ymm registers: a micro-kernel keeps at most 12 accumulators (R rows × P panels × 2 halves
 * of 8 columns), the rest holds weights and broadcasts. x is laid out in row tiles of AVX2_MR
 * rows for both kernels; a streaming call covers R ≤ AVX2_MR of a tile's rows. */
#define AVX2_MR 6
#define AVX2_NP 4          /* panels per group (64 columns) */
#define KC_AVX2_WIDE 128   /* pairs per widened block: one panel's block is 16 KB of f32, in L1 */
/* Row tiles pass over a panel's block in chunks whose x (6 KB per tile and block) stays in L2
 * while the group's panels take their turns: beyond L2, every broadcast waits on L3. */
#define AVX2_CHUNK_ROWS (24 * AVX2_MR)
#define AVX2_BAND_Y_BYTES (128 * 1024) /* y of the groups that share a block's x slices, in L2 */
/* Up to this many rows the streaming kernel (weights widened in registers as they stream from
 * memory) is the faster: reading the weights is the bound. Above it, widening each block once
 * for all row tiles leaves the FMA ports nothing else to do. On Zen 3 (bench_kernels, one thread)
 * the two meet near 12 rows. */
#define AVX2_STREAM_MAX_ROWS 12

/* y columns [8h, 8h + 8) of a panel with `cols` valid columns: a load/store mask. */
STEER_INLINE STEER_TARGET_AVX2 __m256i avx2_half_mask(int cols, int h) {
    int valid = STEER_MAX(0, STEER_MIN(8, cols - 8 * h));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

STEER_INLINE STEER_TARGET_AVX2 __m256 avx2_chain_start(const float* yp, int cols, int h, int accumulate) {
    if (!accumulate || cols <= 8 * h) return _mm256_setzero_ps();
    return cols >= 8 * h + 8 ? _mm256_loadu_ps(yp + 8 * h) : _mm256_maskload_ps(yp + 8 * h, avx2_half_mask(cols, h));
}

STEER_INLINE STEER_TARGET_AVX2 void avx2_chain_store(float* yp, int cols, int h, __m256 v) {
    if (cols >= 8 * h + 8) _mm256_storeu_ps(yp + 8 * h, v);
    else if (cols > 8 * h) _mm256_maskstore_ps(yp + 8 * h, avx2_half_mask(cols, h), v);
}

/* A broadcast from memory at each use: with 12 accumulators live, GCC would otherwise keep the
 * broadcasts of every row in registers and spill accumulators to the stack. */
STEER_INLINE STEER_TARGET_AVX2 __m256 avx2_broadcast(const float* p) {
#if defined(__GNUC__)
    __m256 v;
    __asm__ volatile("vbroadcastss %1, %0" : "=x"(v) : "m"(*p));
    return v;
#else
    return _mm256_broadcast_ss(p);
#endif
}

/* Streaming: R rows × P panels, each panel's 64-byte pair widened in registers (odd element:
 * AND 0xffff0000, even: shift left 16) as it is read, software prefetch ahead on every stream.
 * x: (2·kc, AVX2_MR) from the tile's first row of this call; w: P panels, stride ws elements;
 * y: (R, ldy) at the group's first column, ncols valid columns from there. */
STEER_INLINE STEER_TARGET_AVX2 void kernel_avx2_stream(
    const int R, const int P, const float* x, const uint16_t* w, size_t ws, int kc, float* y, int ldy, int ncols, int accumulate) {
    __m256 c[3][4][2];
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            for (int h = 0; h < 2; h++) c[r][p][h] = avx2_chain_start(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), h, accumulate);
    for (int j = 0; j < kc; j++) {
        for (int p = 0; p < P; p++) {
            const uint16_t* wj = w + p * ws + (size_t)j * 32;
            _mm_prefetch((const char*)wj + PREFETCH_BYTES, _MM_HINT_T0);
            for (int h = 0; h < 2; h++) {
                __m256i b = _mm256_load_si256((const __m256i*)(wj + 16 * h));
                __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(b, high)), even = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
                for (int r = 0; r < R; r++) {
                    __m256 xo = avx2_broadcast(x + (size_t)2 * j * AVX2_MR + r);
                    __m256 xe = avx2_broadcast(x + (size_t)(2 * j + 1) * AVX2_MR + r);
                    c[r][p][h] = _mm256_fmadd_ps(xe, even, _mm256_fmadd_ps(xo, odd, c[r][p][h]));
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < P; p++)
            for (int h = 0; h < 2; h++) avx2_chain_store(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), h, c[r][p][h]);
}

/* Rows [r0, r1) of one row tile over a group of np panels: one row takes 4 panels per pass
 * (8 independent chains), more rows go 3 or 2 at a time over pairs of panels. */
STEER_TARGET_AVX2 static void stream_rows_avx2(const float* xp, const uint16_t* wp, size_t ws, int kc, int np, float* yp, int ldy,
                                               int ncols, int rows, int acc) {
    if (rows == 1) {
        switch (np) {
        case 4: kernel_avx2_stream(1, 4, xp, wp, ws, kc, yp, ldy, ncols, acc); break;
        case 3: kernel_avx2_stream(1, 3, xp, wp, ws, kc, yp, ldy, ncols, acc); break;
        case 2: kernel_avx2_stream(1, 2, xp, wp, ws, kc, yp, ldy, ncols, acc); break;
        default: kernel_avx2_stream(1, 1, xp, wp, ws, kc, yp, ldy, ncols, acc); break;
        }
        return;
    }
    for (int r = 0; r < rows; r += 3) {
        int R = STEER_MIN(3, rows - r);
        for (int p = 0; p < np; p += 2) {
            const float* x = xp + r;
            const uint16_t* w = wp + (size_t)p * ws;
            float* y = yp + (size_t)r * ldy + 16 * p;
            int cols = ncols - 16 * p;
            if (np - p >= 2) {
                if (R == 3) kernel_avx2_stream(3, 2, x, w, ws, kc, y, ldy, cols, acc);
                else if (R == 2) kernel_avx2_stream(2, 2, x, w, ws, kc, y, ldy, cols, acc);
                else kernel_avx2_stream(1, 2, x, w, ws, kc, y, ldy, cols, acc);
            } else {
                if (R == 3) kernel_avx2_stream(3, 1, x, w, ws, kc, y, ldy, cols, acc);
                else if (R == 2) kernel_avx2_stream(2, 1, x, w, ws, kc, y, ldy, cols, acc);
                else kernel_avx2_stream(1, 1, x, w, ws, kc, y, ldy, cols, acc);
            }
        }
    }
}

STEER_TARGET_AVX2 static void task_avx2_stream(const gemm_job* job, int p0, int np, int r0, int r1) {
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    int ncols = n - 16 * p0;
    for (int kb = 0; kb < pairs; kb += KC) {
        int kc = STEER_MIN(KC, pairs - kb);
        const uint16_t* wp = job->w + (size_t)p0 * ws + (size_t)kb * 32;
        for (int r = r0; r < r1; r += AVX2_MR) {
            const float* xp = (const float*)job->x + ((size_t)(r / AVX2_MR) * 2 * pairs + 2 * kb) * AVX2_MR;
            stream_rows_avx2(xp, wp, ws, kc, np, job->y + (size_t)r * n + 16 * p0, n, ncols, STEER_MIN(AVX2_MR, r1 - r), kb > 0);
        }
    }
}

/* Widened: R rows × one panel over its f32 block (2·kc, 16) in L1: per k element two weight
 * loads, R broadcasts and 2R FMAs, 12 accumulators at R = 6. The chain starts from yin (R rows of
 * 16, stride 16: the band's packed partial sums) or from zero, and ends in yout (stride ldy, cols
 * valid columns). */
STEER_INLINE STEER_TARGET_AVX2 void kernel_avx2_wide(
    const int R, const float* x /* (2·kc, AVX2_MR) */, const float* w /* (2·kc, 16) */, int kc2, const float* yin, float* yout, int ldy, int cols) {
    __m256 c[AVX2_MR][2];
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++) c[r][h] = yin ? _mm256_load_ps(yin + 16 * r + 8 * h) : _mm256_setzero_ps();
    for (int i = 0; i < kc2; i++) {
        __m256 b0 = _mm256_load_ps(w + (size_t)i * 16), b1 = _mm256_load_ps(w + (size_t)i * 16 + 8);
        for (int r = 0; r < R; r++) {
            __m256 a = _mm256_broadcast_ss(x + (size_t)i * AVX2_MR + r);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++) avx2_chain_store(yout + (size_t)r * ldy, cols, h, c[r][h]);
}

/* The first row tile over a panel's block: as kernel_avx2_wide, but the weights come as bf16
 * pairs (w: the panel at pair kb), are widened in registers, and are stored to wf (2·kc, 16) for
 * the tiles after it. Widening in a pass of its own cost 2 stores per 32 B read while the FMA
 * ports waited; here the stores go out beside the FMAs. (A tile of fewer than AVX2_MR rows is
 * its chunk's only tile, so only the R = 6 stores are ever read back.) */
STEER_INLINE STEER_TARGET_AVX2 void avx2_widen_pair(
    const int R, __m256 c[AVX2_MR][2], const float* x, const uint16_t* wj, float* dst, __m256i high) {
    __m256 b0 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_load_si256((const __m256i*)wj), high));
    __m256 b1 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_load_si256((const __m256i*)wj + 1), high));
    _mm256_store_ps(dst, b0);
    _mm256_store_ps(dst + 8, b1);
    for (int r = 0; r < R; r++) {
        __m256 a = avx2_broadcast(x + r);
        c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
        c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
    }
    b0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_load_si256((const __m256i*)wj), 16));
    b1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_load_si256((const __m256i*)wj + 1), 16));
    _mm256_store_ps(dst + 16, b0);
    _mm256_store_ps(dst + 24, b1);
    for (int r = 0; r < R; r++) {
        __m256 a = avx2_broadcast(x + AVX2_MR + r);
        c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
        c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
    }
}

#if defined(__GNUC__)
/* One pair at R = 6 as avx2_widen_pair, with its 16 ymm registers named: the compiler's own
 * allocation of the intrinsics spills accumulators. */
#define AVX2_WIDEN_FMA2(off, c0, c1) \
    "vbroadcastss " #off "(%[x]), %[t2]\n\t" \
    "vfmadd231ps %[t0], %[t2], %[" #c0 "]\n\t" \
    "vfmadd231ps %[t1], %[t2], %[" #c1 "]\n\t"
#define AVX2_WIDEN_FMA12(base) \
    AVX2_WIDEN_FMA2(base, a0, b0) AVX2_WIDEN_FMA2(base + 4, a1, b1) AVX2_WIDEN_FMA2(base + 8, a2, b2) \
    AVX2_WIDEN_FMA2(base + 12, a3, b3) AVX2_WIDEN_FMA2(base + 16, a4, b4) AVX2_WIDEN_FMA2(base + 20, a5, b5)
STEER_INLINE STEER_TARGET_AVX2 void avx2_widen_pair6(__m256 c[AVX2_MR][2], const float* x, const uint16_t* wj, float* dst) {
    __m256 t0, t1, t2;
    __asm__("vpcmpeqd %[t2], %[t2], %[t2]\n\t"
            "vpslld $16, %[t2], %[t2]\n\t" /* 0xffff0000: the odd elements */
            "vpand (%[w]), %[t2], %[t0]\n\t"
            "vpand 32(%[w]), %[t2], %[t1]\n\t"
            "vmovaps %[t0], (%[dst])\n\t"
            "vmovaps %[t1], 32(%[dst])\n\t"
            AVX2_WIDEN_FMA12(0)
            "vmovdqa (%[w]), %[t0]\n\t"
            "vmovdqa 32(%[w]), %[t1]\n\t"
            "vpslld $16, %[t0], %[t0]\n\t"
            "vpslld $16, %[t1], %[t1]\n\t"
            "vmovaps %[t0], 64(%[dst])\n\t"
            "vmovaps %[t1], 96(%[dst])\n\t"
            AVX2_WIDEN_FMA12(24)
            : [a0] "+x"(c[0][0]), [b0] "+x"(c[0][1]), [a1] "+x"(c[1][0]), [b1] "+x"(c[1][1]), [a2] "+x"(c[2][0]), [b2] "+x"(c[2][1]),
              [a3] "+x"(c[3][0]), [b3] "+x"(c[3][1]), [a4] "+x"(c[4][0]), [b4] "+x"(c[4][1]), [a5] "+x"(c[5][0]), [b5] "+x"(c[5][1]),
              [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2)
            : [x] "r"(x), [w] "r"(wj), [dst] "r"(dst)
            : "memory");
}
#endif

STEER_INLINE STEER_TARGET_AVX2 void kernel_avx2_widen(
    const int R, const float* x, const uint16_t* w, int kc, float* wf, const float* yin, float* yout, int ldy, int cols) {
    __m256 c[AVX2_MR][2];
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++) c[r][h] = yin ? _mm256_load_ps(yin + 16 * r + 8 * h) : _mm256_setzero_ps();
    for (int j = 0; j < kc; j++) {
#if defined(__GNUC__)
        if (R == AVX2_MR) {
            avx2_widen_pair6(c, x + (size_t)2 * j * AVX2_MR, w + (size_t)j * 32, wf + (size_t)2 * j * 16);
            continue;
        }
#endif
        avx2_widen_pair(R, c, x + (size_t)2 * j * AVX2_MR, w + (size_t)j * 32, wf + (size_t)2 * j * 16, high);
    }
    for (int r = 0; r < R; r++)
        for (int h = 0; h < 2; h++) avx2_chain_store(yout + (size_t)r * ldy, cols, h, c[r][h]);
}

/* The weights a task reads after its current block: np panels from panel p0, pairs [kb, kb + kc).
 * Their lines are prefetched into L2 a few at a time between micro-kernel calls, so that widening
 * the block later does not wait on memory. */
typedef struct avx2_prefetch {
    const uint16_t* w; /* panel p0's pair kb */
    size_t ws;         /* elements between panels */
    int kc, lines, next, per_call;
    int panel, pair;   /* of line `next`, kept incrementally (no division on the hot path) */
} avx2_prefetch;

STEER_INLINE void avx2_prefetch_some(avx2_prefetch* pf) {
    for (int end = STEER_MIN(pf->lines, pf->next + pf->per_call); pf->next < end; pf->next++) {
        _mm_prefetch((const char*)(pf->w + (size_t)pf->panel * pf->ws + (size_t)pf->pair * 32), _MM_HINT_T1);
        if (++pf->pair == pf->kc) {
            pf->pair = 0;
            pf->panel++;
        }
    }
}

/* A run of panel groups [g0, g1) × rows [r0, r1). The loops go row chunk → a few groups at a
 * time (a "band") → k block → group → panel → row tile, so that one block's x slices (6 KB per
 * row tile) are read from memory once and then serve every group of the band from L2. Between k
 * blocks the band's partial sums wait in yb, packed tile by tile (16 columns × 6 rows contiguous,
 * in L2, read in order and free of the 4 KB aliasing between y's rows); the last block writes y.
 * A panel's block is widened by its first row tile (kernel_avx2_widen) and read from L1 by the
 * others; the block this thread reaches next is prefetched while the current one computes. */
STEER_TARGET_AVX2 static void run_avx2_wide(const gemm_job* job, int g0, int g1, int r0, int r1, float* wf, float* yb) {
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    for (int rc = r0; rc < r1; rc += AVX2_CHUNK_ROWS) {
        int rend = STEER_MIN(r1, rc + AVX2_CHUNK_ROWS), tiles = (rend - rc + AVX2_MR - 1) / AVX2_MR;
        int band = STEER_MAX(1, AVX2_BAND_Y_BYTES / (tiles * AVX2_MR * AVX2_NP * 16 * (int)sizeof(float)));
        for (int b0 = g0; b0 < g1; b0 += band) {
            int b1 = STEER_MIN(g1, b0 + band);
            for (int kb = 0; kb < pairs; kb += KC_AVX2_WIDE) {
                int kc = STEER_MIN(KC_AVX2_WIDE, pairs - kb), last = kb + kc >= pairs;
                for (int g = b0; g < b1; g++) {
                    int p0 = g * AVX2_NP, np = STEER_MIN(AVX2_NP, job->panels - p0);
                    /* next: the band's next group at this block, or its first at the next block */
                    int next_g = g + 1 < b1 ? g + 1 : b0, next_kb = g + 1 < b1 ? kb : kb + kc;
                    avx2_prefetch pf = {0};
                    if (next_kb < pairs) {
                        pf.w = job->w + (size_t)next_g * AVX2_NP * ws + (size_t)next_kb * 32;
                        pf.kc = STEER_MIN(KC_AVX2_WIDE, pairs - next_kb);
                        pf.lines = STEER_MIN(AVX2_NP, job->panels - next_g * AVX2_NP) * pf.kc;
                    }
                    pf.ws = ws;
                    pf.per_call = (pf.lines + np * tiles - 1) / (np * tiles);
                    for (int p = 0; p < np; p++) {
                        const float* wb = wf + (size_t)p * 2 * kc * 16;
                        float* ybp = yb + (size_t)((g - b0) * AVX2_NP + p) * tiles * AVX2_MR * 16;
                        int cols = panel_cols(n, p0 + p);
                        for (int r = rc; r < rend; r += AVX2_MR, ybp += AVX2_MR * 16) {
                            const float* xp = (const float*)job->x + ((size_t)(r / AVX2_MR) * 2 * pairs + 2 * kb) * AVX2_MR;
                            const float* yin = kb > 0 ? ybp : NULL;
                            float* yout = last ? job->y + (size_t)r * n + 16 * (p0 + p) : ybp;
                            int ldy = last ? n : 16, ycols = last ? cols : 16;
                            avx2_prefetch_some(&pf);
                            if (r == rc) {
                                const uint16_t* wsrc = job->w + (size_t)(p0 + p) * ws + (size_t)kb * 32;
                                float* wdst = wf + (size_t)p * 2 * kc * 16;
                                switch (STEER_MIN(AVX2_MR, rend - r)) {
                                case 6: kernel_avx2_widen(6, xp, wsrc, kc, wdst, yin, yout, ldy, ycols); break;
                                case 5: kernel_avx2_widen(5, xp, wsrc, kc, wdst, yin, yout, ldy, ycols); break;
                                case 4: kernel_avx2_widen(4, xp, wsrc, kc, wdst, yin, yout, ldy, ycols); break;
                                case 3: kernel_avx2_widen(3, xp, wsrc, kc, wdst, yin, yout, ldy, ycols); break;
                                case 2: kernel_avx2_widen(2, xp, wsrc, kc, wdst, yin, yout, ldy, ycols); break;
                                default: kernel_avx2_widen(1, xp, wsrc, kc, wdst, yin, yout, ldy, ycols); break;
                                }
                                continue;
                            }
                            switch (STEER_MIN(AVX2_MR, rend - r)) {
                            case 6: kernel_avx2_wide(6, xp, wb, 2 * kc, yin, yout, ldy, ycols); break;
                            case 5: kernel_avx2_wide(5, xp, wb, 2 * kc, yin, yout, ldy, ycols); break;
                            case 4: kernel_avx2_wide(4, xp, wb, 2 * kc, yin, yout, ldy, ycols); break;
                            case 3: kernel_avx2_wide(3, xp, wb, 2 * kc, yin, yout, ldy, ycols); break;
                            case 2: kernel_avx2_wide(2, xp, wb, 2 * kc, yin, yout, ldy, ycols); break;
                            default: kernel_avx2_wide(1, xp, wb, 2 * kc, yin, yout, ldy, ycols); break;
                            }
                        }
                    }
                }
            }
        }
    }
}

/* ---- AVX-512F on pre-widened weights (compute-bound m) ---------------------------------
 * Each task widens a k block of its NP panels to f32 once, into per-thread scratch laid out
 * (NP, 2·kc, 16), and every row tile then runs a plain f32 FMA micro-kernel over it.
 * On cores where vdpbf16ps issues at half the f32 FMA rate this is the faster compute path;
 * steer_gemm_bf16 calibrates once which of the two to use. */

#define WIDE_MR 8
#define WIDE_NP 3
#define KC_WIDE 64
/* With many row tiles a task widens a long k block (kept in L2) so that each row tile runs the
 * chain over it in one go: y is then read and written once per block instead of once per 64
 * pairs, and x streams along its contiguous run. */
#define KC_WIDE_LONG 1024
#define WIDE_LONG_MIN_ROWS 128

STEER_INLINE STEER_TARGET_AVX512 void kernel_wide(
    const int MR, const int NP, const float* x /* (2·kc, WIDE_MR) */, const float* w /* (NP, 2·kc, 16) */,
    int kc2, float* y, int ldy, int ncols, int accumulate) {
    __m512 c[WIDE_MR][WIDE_NP];
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) c[r][p] = chain_start(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), accumulate);
    for (int i = 0; i < kc2; i++) {
        __m512 b[WIDE_NP];
        for (int p = 0; p < NP; p++) b[p] = _mm512_load_ps(w + ((size_t)p * kc2 + i) * 16);
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(x[(size_t)i * WIDE_MR + r]);
            for (int p = 0; p < NP; p++) c[r][p] = _mm512_fmadd_ps(a, b[p], c[r][p]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) chain_store(y + (size_t)r * ldy + 16 * p, panel_cols(ncols, p), c[r][p]);
}

#if defined(__GNUC__)
/* The full 8 × 3 tile in inline assembly: GCC's register allocator spills one of the three
 * weight vectors of the intrinsic version to the stack on every k. 24 accumulators, 3 weight
 * vectors and one broadcast fill the 32 zmm registers. */
#define WIDE_FMA3(r, c0, c1, c2)               \
    "vbroadcastss " #r "*4(%[x]), %%zmm3\n\t"  \
    "vfmadd231ps %%zmm0, %%zmm3, %%" #c0 "\n\t" \
    "vfmadd231ps %%zmm1, %%zmm3, %%" #c1 "\n\t" \
    "vfmadd231ps %%zmm2, %%zmm3, %%" #c2 "\n\t"
/* y rows of the tile: three base registers and the row stride cover rows 0..7 with x86 scale
 * factors (0, 1, 2, 4 from y0; 3, 5, 7 from y3; 6 from y6). */
#define Y_ROW0 "(%[y0])"
#define Y_ROW1 "(%[y0],%[ld])"
#define Y_ROW2 "(%[y0],%[ld],2)"
#define Y_ROW3 "(%[y3])"
#define Y_ROW4 "(%[y0],%[ld],4)"
#define Y_ROW5 "(%[y3],%[ld],2)"
#define Y_ROW6 "(%[y6])"
#define Y_ROW7 "(%[y3],%[ld],4)"
#define WIDE_LOAD3(row, c0, c1, c2)                   \
    "vmovups " row ", %%" #c0 "\n\t"                  \
    "vmovups 64" row ", %%" #c1 "\n\t"                \
    "vmovups 128" row ", %%" #c2 "\n\t"
#define WIDE_STORE3(row, c0, c1, c2)                  \
    "vmovups %%" #c0 ", " row "\n\t"                  \
    "vmovups %%" #c1 ", 64" row "\n\t"                \
    "vmovups %%" #c2 ", 128" row "\n\t"
#define WIDE_ZERO3(c0, c1, c2)                        \
    "vpxord %%" #c0 ", %%" #c0 ", %%" #c0 "\n\t"      \
    "vpxord %%" #c1 ", %%" #c1 ", %%" #c1 "\n\t"      \
    "vpxord %%" #c2 ", %%" #c2 ", %%" #c2 "\n\t"

/* The chain starts from y (accumulate) or 0 and ends in y: the accumulators go straight
 * between y and registers. pf advances by pfs bytes per k step, prefetching into L2 the
 * weights this thread reads next. */
STEER_TARGET_AVX512 static void kernel_wide_8x3(const float* x, const float* w, int kc2, float* y, int ldy, int accumulate,
                                                const char* pf, long pfs) {
    size_t ws = (size_t)kc2 * 64, ld = (size_t)ldy * 4;
    float *y0 = y, *y3 = y + (size_t)3 * ldy, *y6 = y + (size_t)6 * ldy;
    long count = kc2, acc = accumulate;
    __asm__ volatile(
        "test %[acc], %[acc]\n\t"
        "jz 2f\n\t"
        WIDE_LOAD3(Y_ROW0, zmm8, zmm9, zmm10) WIDE_LOAD3(Y_ROW1, zmm11, zmm12, zmm13) WIDE_LOAD3(Y_ROW2, zmm14, zmm15, zmm16)
        WIDE_LOAD3(Y_ROW3, zmm17, zmm18, zmm19) WIDE_LOAD3(Y_ROW4, zmm20, zmm21, zmm22) WIDE_LOAD3(Y_ROW5, zmm23, zmm24, zmm25)
        WIDE_LOAD3(Y_ROW6, zmm26, zmm27, zmm28) WIDE_LOAD3(Y_ROW7, zmm29, zmm30, zmm31)
        "jmp 1f\n\t"
        "2:\n\t"
        WIDE_ZERO3(zmm8, zmm9, zmm10) WIDE_ZERO3(zmm11, zmm12, zmm13) WIDE_ZERO3(zmm14, zmm15, zmm16)
        WIDE_ZERO3(zmm17, zmm18, zmm19) WIDE_ZERO3(zmm20, zmm21, zmm22) WIDE_ZERO3(zmm23, zmm24, zmm25)
        WIDE_ZERO3(zmm26, zmm27, zmm28) WIDE_ZERO3(zmm29, zmm30, zmm31)
        "1:\n\t"
        "vmovaps (%[w]), %%zmm0\n\t"
        "vmovaps (%[w],%[ws]), %%zmm1\n\t"
        "vmovaps (%[w],%[ws],2), %%zmm2\n\t"
        WIDE_FMA3(0, zmm8, zmm9, zmm10) WIDE_FMA3(1, zmm11, zmm12, zmm13) WIDE_FMA3(2, zmm14, zmm15, zmm16)
        WIDE_FMA3(3, zmm17, zmm18, zmm19) WIDE_FMA3(4, zmm20, zmm21, zmm22) WIDE_FMA3(5, zmm23, zmm24, zmm25)
        WIDE_FMA3(6, zmm26, zmm27, zmm28) WIDE_FMA3(7, zmm29, zmm30, zmm31)
        "prefetcht1 (%[pf])\n\t"
        "add %[pfs], %[pf]\n\t"
        "add $64, %[w]\n\t"
        "add $32, %[x]\n\t"
        "dec %[count]\n\t"
        "jnz 1b\n\t"
        WIDE_STORE3(Y_ROW0, zmm8, zmm9, zmm10) WIDE_STORE3(Y_ROW1, zmm11, zmm12, zmm13) WIDE_STORE3(Y_ROW2, zmm14, zmm15, zmm16)
        WIDE_STORE3(Y_ROW3, zmm17, zmm18, zmm19) WIDE_STORE3(Y_ROW4, zmm20, zmm21, zmm22) WIDE_STORE3(Y_ROW5, zmm23, zmm24, zmm25)
        WIDE_STORE3(Y_ROW6, zmm26, zmm27, zmm28) WIDE_STORE3(Y_ROW7, zmm29, zmm30, zmm31)
        : [x] "+r"(x), [w] "+r"(w), [count] "+r"(count), [pf] "+r"(pf)
        : [ws] "r"(ws), [pfs] "r"(pfs), [y0] "r"(y0), [y3] "r"(y3), [y6] "r"(y6), [ld] "r"(ld), [acc] "r"(acc)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26",
          "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", "memory");
}
#define WIDE_FULL_TILE(xp, wf, kc2, yp, n, ncols, acc)                  \
    if (ncols >= 48 && kc2 > 0) {                                        \
        kernel_wide_8x3(xp, wf, kc2, yp, n, acc, pf, pfs);               \
        pf += (size_t)pfs * (kc2);                                       \
        break;                                                           \
    }
#else
#define WIDE_FULL_TILE(xp, wf, kc2, yp, n, ncols, acc)
#endif

#define WIDE_ROWS(NP_)                                                                      \
    switch (mr) {                                                                           \
    case 8:                                                                                 \
        if (NP_ == 3) WIDE_FULL_TILE(xp, wf, 2 * kc, yp, n, ncols, kb > 0)                  \
        kernel_wide(8, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;                   \
    case 7: kernel_wide(7, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;               \
    case 6: kernel_wide(6, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;               \
    case 5: kernel_wide(5, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;               \
    case 4: kernel_wide(4, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;               \
    case 3: kernel_wide(3, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;               \
    case 2: kernel_wide(2, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;               \
    default: kernel_wide(1, NP_, xp, wf, 2 * kc, yp, n, ncols, kb > 0); break;              \
    }

/* next_p0: the first panel of the group this thread computes next, or -1. Its weights (one
 * contiguous run of panels) are prefetched into L2 while this group computes, spread evenly
 * over the micro-kernel's k steps, so that widening them later does not wait on memory. */
STEER_TARGET_AVX512 static void task_wide(const gemm_job* job, int p0, int np, int r0, int r1, int next_p0, float* wf /* (NP, 2·KC, 16) */) {
    const int block = r1 - r0 >= WIDE_LONG_MIN_ROWS ? KC_WIDE_LONG : KC_WIDE;
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    int ncols = n - 16 * p0;
    int tiles = (r1 - r0 + WIDE_MR - 1) / WIDE_MR, next_np = next_p0 < 0 ? 0 : STEER_MIN(WIDE_NP, job->panels - next_p0);
    const char* pf = (const char*)(job->w + (size_t)(next_p0 < 0 ? p0 : next_p0) * ws);
    long pfs = (64L * next_np + 2L * tiles - 1) / (2L * tiles); /* bytes per k step: next_np·pairs lines over tiles·2·pairs steps */
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int kb = 0; kb < pairs; kb += block) {
        int kc = STEER_MIN(block, pairs - kb);
        for (int p = 0; p < np; p++) {
            const uint16_t* wp = job->w + (size_t)(p0 + p) * ws + (size_t)kb * 32;
            float* dst = wf + (size_t)p * 2 * kc * 16;
            for (int j = 0; j < kc; j++) {
                /* 4 KB ahead: a 64-pair block ends at a page boundary, where the hardware
                 * prefetcher stops, so the next block comes in while this one is computed. */
                _mm_prefetch((const char*)(wp + (size_t)(j + KC_WIDE) * 32), _MM_HINT_T1);
                __m512i b = _mm512_load_si512((const void*)(wp + (size_t)j * 32));
                _mm512_store_si512((void*)(dst + (size_t)2 * j * 16), _mm512_and_si512(b, high));
                _mm512_store_si512((void*)(dst + (size_t)(2 * j + 1) * 16), _mm512_slli_epi32(b, 16));
            }
        }
        for (int r = r0; r < r1; r += WIDE_MR) {
            int mr = STEER_MIN(WIDE_MR, r1 - r);
            const float* xp = (const float*)job->x + ((size_t)(r / WIDE_MR) * 2 * pairs + 2 * kb) * WIDE_MR;
            float* yp = job->y + (size_t)r * n + 16 * p0;
            switch (np) {
            case 3: WIDE_ROWS(3) break;
            case 2: WIDE_ROWS(2) break;
            default: WIDE_ROWS(1) break;
            }
        }
    }
}
#endif

#define SCALAR_MR 4

/* ---- scalar --------------------------------------------------------------------------- */

static void task_scalar(const gemm_job* job, int p0, int np, int r0, int r1) {
    int pairs = job->pairs, n = job->n;
    const float* x = (const float*)job->x;
    for (int p = p0; p < p0 + np; p++) {
        const uint16_t* wp = job->w + (size_t)p * pairs * 32;
        int cols = panel_cols(n, p);
        for (int r = r0; r < r1; r++) {
            const float* xr = x + (size_t)(r / SCALAR_MR) * 2 * pairs * SCALAR_MR + r % SCALAR_MR;
            float acc[16] = {0};
            for (int j = 0; j < pairs; j++)
                for (int l = 0; l < 16; l++) {
                    acc[l] += xr[(size_t)2 * j * SCALAR_MR] * steer_bf16_to_f32(wp[(size_t)j * 32 + 2 * l + 1]);
                    acc[l] += xr[(size_t)(2 * j + 1) * SCALAR_MR] * steer_bf16_to_f32(wp[(size_t)j * 32 + 2 * l]);
                }
            for (int l = 0; l < cols; l++) job->y[(size_t)r * n + 16 * p + l] = acc[l];
        }
    }
}

/* ---- driver --------------------------------------------------------------------------- */

/* Which micro-kernel a call runs. The row tile (MR) and x layout follow from it. */
enum gemm_path { PATH_SCALAR, PATH_AVX2, PATH_AVX2_WIDE, PATH_SHIFT, PATH_WIDE, PATH_DOT };

static const int path_mr[] = {SCALAR_MR, AVX2_MR, AVX2_MR, F32_MR, WIDE_MR, BF16_MR};
static const int path_np[] = {4, AVX2_NP, AVX2_NP, F32_NP, WIDE_NP, BF16_NP};

static int g_mode = STEER_GEMM_AUTO;
/* Calibrated once on AVX512_BF16 cores: */
static int g_dot_is_faster = -1; /* vdpbf16ps beats widened f32 FMA on compute-bound m */
static int g_paths_agree = -1;   /* and the two give bitwise the same y, so each call may take either */

/* Up to about this many rows vdpbf16ps is the faster path even where its peak is half the f32
 * FMA peak: it streams the weights straight from memory, while the widened path waits on memory
 * to widen each block before computing on it (on the 2-core Xeon the two meet near m = 14). */
#define DOT_MAX_ROWS 12

int steer_cpu_set_gemm_mode(int mode) {
    g_mode = mode;
    return g_mode;
}

static void gemm_task(void* ctx, int task, int thread) {
    const gemm_job* job = (const gemm_job*)ctx;
    int g0 = job->run_start[task % job->runs], g1 = job->run_start[task % job->runs + 1], rc = task / job->runs;
    int r0 = rc * job->row_chunk, r1 = STEER_MIN(job->m, r0 + job->row_chunk);
#ifdef STEER_HAVE_X86
    /* DAZ and FTZ, as vdpbf16ps has them built in: every path flushes the same denormals. */
    unsigned int csr = steer_denormals_flush();
#endif
#ifdef STEER_HAVE_X86
    if (job->path == PATH_AVX2_WIDE)
    {
        size_t wf_bytes = sizeof(float) * AVX2_NP * 2 * KC_AVX2_WIDE * 16;
        char* scratch = (char*)steer_thread_scratch(thread, wf_bytes + AVX2_BAND_Y_BYTES);
        run_avx2_wide(job, g0, g1, r0, r1, (float*)scratch, (float*)(scratch + wf_bytes));
    }
    else
#endif
    for (int g = g0; g < g1; g++) {
        int p0 = g * job->np, np = STEER_MIN(job->np, job->panels - p0);
        switch (job->path) {
#ifdef STEER_HAVE_X86
        case PATH_DOT: task_bf16(job, p0, np, r0, r1, g + 1 < g1 ? p0 + np : -1); break;
        case PATH_WIDE:
            task_wide(job, p0, np, r0, r1, g + 1 < g1 ? p0 + np : -1,
                      (float*)steer_thread_scratch(thread, sizeof(float) * WIDE_NP * 2 * KC_WIDE_LONG * 16));
            break;
        case PATH_SHIFT: task_avx512(job, p0, np, r0, r1); break;
        case PATH_AVX2: task_avx2_stream(job, p0, np, r0, r1); break;
#endif
        default: task_scalar(job, p0, np, r0, r1); break;
        }
    }
#ifdef STEER_HAVE_X86
    steer_denormals_restore(csr);
#endif
}

static void gemm_run(const float* x, int m, int k, const uint16_t* packed, int n, float* y, int path) {
    int threads = steer_pool_threads();
    gemm_job job;
    job.pairs = (k + 1) / 2;
    job.panels = (n + 15) / 16;
    job.m = m;
    job.n = n;
    job.w = packed;
    job.y = y;
    job.path = path;
    int mr = path_mr[path];
    job.x = convert_x(x, m, k, job.pairs, path != PATH_DOT, mr);
    job.np = path_np[path];
    job.groups = (job.panels + job.np - 1) / job.np;
    /* Split rows only when there are too few panel groups to keep every thread busy. */
    int row_chunks = job.groups >= 4 * threads ? 1 : STEER_MIN((m + mr - 1) / mr, (4 * threads + job.groups - 1) / job.groups);
    job.row_chunk = (m + row_chunks - 1) / row_chunks;
    job.row_chunk = (job.row_chunk + mr - 1) / mr * mr;
    row_chunks = (m + job.row_chunk - 1) / job.row_chunk;
    /* Runs of consecutive groups per task, so that a task knows which weights it reads next,
     * shrinking toward the end (guided scheduling) so that the threads finish together. */
    job.runs = 0;
    for (int g = 0; g < job.groups; job.runs++) {
        job.run_start[job.runs] = g;
        g += job.runs == MAX_RUNS - 1 ? job.groups - g : STEER_MAX(1, (job.groups - g) / (3 * threads));
    }
    job.run_start[job.runs] = job.groups;
    steer_parallel_for(job.runs * row_chunks, gemm_task, &job);
}

/* Times both compute kernels on an L2-resident problem (a few ms, once): some cores issue
 * vdpbf16ps at the f32 FMA rate (twice the flops), others at half of it. And checks that they
 * agree bit for bit, as they must by construction (see the top of this file). */
static void calibrate(void) {
    enum { M = 48, K = 1024, N = 256 };
    float* x = (float*)steer_aligned_alloc(sizeof(float) * M * K);
    float* y[2] = {(float*)steer_aligned_alloc(sizeof(float) * M * N), (float*)steer_aligned_alloc(sizeof(float) * M * N)};
    uint16_t* w = (uint16_t*)steer_aligned_alloc(steer_pack_size(N, K));
    uint32_t seed = 12345;
    for (int i = 0; i < M * K; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * (float)(1 << (seed % 7)); /* several magnitudes */
    }
    for (size_t i = 0; i < steer_pack_size(N, K) / 2; i++) {
        seed = seed * 1664525u + 1013904223u;
        w[i] = (uint16_t)(0x3a00 + (seed >> 16) % 0x0800 + ((seed >> 8) & 1) * 0x8000); /* ±[2^-11, 2^5) */
    }
    double best[2] = {1e30, 1e30};
    for (int rep = 0; rep < 5; rep++)
        for (int path = 0; path < 2; path++) {
            double t0 = steer_seconds();
            for (int i = 0; i < 4; i++) gemm_run(x, M, K, w, N, y[path], path ? PATH_DOT : PATH_WIDE);
            double t = steer_seconds() - t0;
            if (t < best[path]) best[path] = t;
        }
    g_paths_agree = memcmp(y[0], y[1], sizeof(float) * M * N) == 0;
    g_dot_is_faster = best[1] < best[0];
    steer_aligned_free(x);
    steer_aligned_free(y[0]);
    steer_aligned_free(y[1]);
    steer_aligned_free(w);
}

static int choose_path(int isa, int m) {
    switch (isa) {
    case STEER_ISA_AVX512_BF16:
        if (g_mode == STEER_GEMM_DOT) return PATH_DOT;
        if (g_mode == STEER_GEMM_WIDE) return PATH_WIDE;
        /* A row's result must not depend on how many rows share the call, or a sampled sequence
         * would change with its batch neighbours (DESIGN.md §4): the path may follow m only
         * where both paths were seen to give the same bits. */
        if (g_dot_is_faster < 0) calibrate();
        if (g_dot_is_faster) return PATH_DOT;
        return g_paths_agree && m <= DOT_MAX_ROWS ? PATH_DOT : PATH_WIDE;
    case STEER_ISA_AVX512:
        if (g_mode == STEER_GEMM_DOT) return PATH_SHIFT;
        return PATH_WIDE;
    case STEER_ISA_AVX2:
        if (g_mode == STEER_GEMM_DOT) return PATH_AVX2;
        if (g_mode == STEER_GEMM_WIDE) return PATH_AVX2_WIDE;
        return m <= AVX2_STREAM_MAX_ROWS ? PATH_AVX2 : PATH_AVX2_WIDE;
    default: return PATH_SCALAR;
    }
}

void steer_gemm_bf16(const float* x, int m, int k, const uint16_t* packed, int n, float* y) {
    if (m <= 0 || n <= 0) return;
    gemm_run(x, m, k, packed, n, y, choose_path(steer_isa_current(), m));
}

void steer_ref_gemm_bf16(const float* x, int m, int k, const uint16_t* packed, int n, float* y) {
    int pairs = (k + 1) / 2;
    for (int r = 0; r < m; r++)
        for (int o = 0; o < n; o++) {
            const uint16_t* panel = packed + (size_t)(o / 16) * pairs * 32 + (o % 16) * 2;
            double acc = 0;
            for (int i = 0; i < k; i++) {
                float xi = steer_bf16_to_f32(steer_f32_to_bf16(x[(size_t)r * k + i]));
                acc += (double)xi * steer_bf16_to_f32(panel[(size_t)(i / 2) * 32 + (i % 2)]);
            }
            y[(size_t)r * n + o] = (float)acc;
        }
}
