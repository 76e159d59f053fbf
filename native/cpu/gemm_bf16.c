/* y(m, n) = x(m, k) · Wᵀ with W packed bf16 (pack.c), x rounded to bf16 once per call and
 * f32 accumulation.
 *
 * Work split: a task is a group of NP panels (NP·16 output columns) × a chunk of rows. Within a
 * task, k is blocked in KC pairs and the rows in micro-tiles of MR; a micro-kernel keeps
 * MR × NP accumulator registers. For small m the group's panels are read once from memory, as
 * NP contiguous streams with software prefetch (the m = 1 GEMV is bandwidth-bound); for large m
 * the group's KC-block stays in L1/L2 while all row tiles pass over it (compute-bound).
 *
 * ISA paths, all on the same packed layout:
 *   AVX512_BF16  vdpbf16ps, x pairs broadcast, MR = 6, NP = 4
 *   AVX-512F     bf16 widened to f32 by shift/mask, FMA, MR = 4, NP = 4
 *   AVX2 + FMA   the same at 256 bits, MR = 4, one panel at a time
 *   scalar       plain C
 */
#include <stdlib.h>

#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define STEER_HAVE_X86 1
#endif

#define KC 256              /* pairs per k block */
#define PREFETCH_BYTES 1024 /* software prefetch distance along each panel stream */

typedef struct gemm_job {
    const void* x;       /* (m, 2·pairs): bf16 for the BF16 path, bf16-rounded f32 otherwise */
    const uint16_t* w;   /* packed (panels, pairs, 32) */
    float* y;            /* (m, n) */
    int m, n, pairs, panels;
    int np;              /* panels per task */
    int groups;          /* tasks along n */
    int row_chunk;       /* rows per task */
} gemm_job;

/* ---- x → bf16 -------------------------------------------------------------------------- */

typedef struct convert_job {
    const float* x;  /* (m, k) */
    void* out;       /* (m, 2·pairs) bf16, or f32 rounded through bf16 when widen */
    int m, k, pairs, widen, rows_per_task;
} convert_job;

static void convert_rows_scalar(const convert_job* j, int r0, int r1) {
    int kp = 2 * j->pairs;
    for (int r = r0; r < r1; r++) {
        const float* xr = j->x + (size_t)r * j->k;
        if (j->widen) {
            float* o = (float*)j->out + (size_t)r * kp;
            for (int i = 0; i < j->k; i++) o[i] = steer_bf16_to_f32(steer_f32_to_bf16(xr[i]));
            for (int i = j->k; i < kp; i++) o[i] = 0;
        } else {
            uint16_t* o = (uint16_t*)j->out + (size_t)r * kp;
            for (int i = 0; i < j->k; i++) o[i] = steer_f32_to_bf16(xr[i]);
            for (int i = j->k; i < kp; i++) o[i] = 0;
        }
    }
}

#ifdef STEER_HAVE_X86
STEER_TARGET_AVX512 static void convert_rows_avx512(const convert_job* j, int r0, int r1) {
    int kp = 2 * j->pairs;
    const __m512i round = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
    for (int r = r0; r < r1; r++) {
        const float* xr = j->x + (size_t)r * j->k;
        int i = 0;
        for (; i + 16 <= j->k; i += 16) {
            __m512 f = _mm512_loadu_ps(xr + i);
            __m512i bits = _mm512_castps_si512(f), kept = _mm512_srli_epi32(bits, 16);
            __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, round), _mm512_and_si512(kept, one)), 16);
            __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
            __m512i h = _mm512_mask_or_epi32(rounded, nan, kept, quiet);
            if (j->widen)
                _mm512_storeu_si512((float*)j->out + (size_t)r * kp + i, _mm512_slli_epi32(h, 16));
            else
                _mm256_storeu_si256((__m256i*)((uint16_t*)j->out + (size_t)r * kp + i), _mm512_cvtepi32_epi16(h));
        }
        for (; i < kp; i++) {
            uint16_t h = i < j->k ? steer_f32_to_bf16(xr[i]) : 0;
            if (j->widen) ((float*)j->out)[(size_t)r * kp + i] = steer_bf16_to_f32(h);
            else ((uint16_t*)j->out)[(size_t)r * kp + i] = h;
        }
    }
}
#endif

static void convert_task(void* ctx, int task, int thread) {
    (void)thread;
    const convert_job* j = (const convert_job*)ctx;
    int r0 = task * j->rows_per_task, r1 = STEER_MIN(j->m, r0 + j->rows_per_task);
#ifdef STEER_HAVE_X86
    if (steer_isa_current() >= STEER_ISA_AVX512) { convert_rows_avx512(j, r0, r1); return; }
#endif
    convert_rows_scalar(j, r0, r1);
}

/* Rounds x to bf16 into the call scratch: bf16 pairs, or (widen) their exact f32 values. */
static void* convert_x(const float* x, int m, int k, int pairs, int widen) {
    size_t bytes = (size_t)m * 2 * pairs * (widen ? 4 : 2);
    convert_job j = {x, steer_call_scratch(bytes), m, k, pairs, widen, 0};
    size_t elements = (size_t)m * k;
    int tasks = elements < (1 << 16) ? 1 : STEER_MIN(m, 4 * steer_pool_threads());
    j.rows_per_task = (m + tasks - 1) / tasks;
    steer_parallel_for((m + j.rows_per_task - 1) / j.rows_per_task, convert_task, &j);
    return j.out;
}

/* ---- output tiles -------------------------------------------------------------------- */

/* Columns of panel p that exist in y: 16, or fewer in the last panel. */
STEER_INLINE int panel_cols(int ncols, int p) { return STEER_MAX(0, STEER_MIN(16, ncols - 16 * p)); }

/* ---- AVX512_BF16 ---------------------------------------------------------------------- */

#ifdef STEER_HAVE_X86
#define BF16_MR 6
#define BF16_NP 4

STEER_INLINE STEER_TARGET_AVX512_BF16 void kernel_bf16(
    const int MR, const int NP, const uint32_t* x /* (MR, xs) pairs */, int xs,
    const uint16_t* w /* NP panels, stride ws elements */, size_t ws, int kc,
    float* y /* (MR, ldy) */, int ldy, int ncols, int accumulate, int prefetch) {
    __m512 c[BF16_MR][BF16_NP];
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) c[r][p] = _mm512_setzero_ps();
    for (int j = 0; j < kc; j++) {
        __m512i b[BF16_NP];
        for (int p = 0; p < NP; p++) {
            b[p] = _mm512_load_si512((const void*)(w + p * ws + (size_t)j * 32));
            if (prefetch) _mm_prefetch((const char*)(w + p * ws + (size_t)j * 32) + PREFETCH_BYTES, _MM_HINT_T0);
        }
        for (int r = 0; r < MR; r++) {
            __m512i a = _mm512_set1_epi32((int)x[(size_t)r * xs + j]);
            for (int p = 0; p < NP; p++) c[r][p] = _mm512_dpbf16_ps(c[r][p], (__m512bh)a, (__m512bh)b[p]);
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) {
            int cols = panel_cols(ncols, p);
            if (cols == 0) continue;
            __mmask16 mask = (__mmask16)(cols == 16 ? 0xffff : (1u << cols) - 1);
            float* yp = y + (size_t)r * ldy + 16 * p;
            __m512 v = c[r][p];
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, yp));
            _mm512_mask_storeu_ps(yp, mask, v);
        }
}

#define BF16_ROWS(NP_)                                                                           \
    switch (mr) {                                                                                \
    case 6: kernel_bf16(6, NP_, xp, pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;          \
    case 5: kernel_bf16(5, NP_, xp, pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;          \
    case 4: kernel_bf16(4, NP_, xp, pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;          \
    case 3: kernel_bf16(3, NP_, xp, pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;          \
    case 2: kernel_bf16(2, NP_, xp, pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;          \
    default: kernel_bf16(1, NP_, xp, pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;         \
    }

STEER_TARGET_AVX512_BF16 static void task_bf16(const gemm_job* job, int p0, int np, int r0, int r1) {
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    int ncols = n - 16 * p0;
    for (int kb = 0; kb < pairs; kb += KC) {
        int kc = STEER_MIN(KC, pairs - kb);
        const uint16_t* wp = job->w + (size_t)p0 * ws + (size_t)kb * 32;
        for (int r = r0; r < r1; r += BF16_MR) {
            int mr = STEER_MIN(BF16_MR, r1 - r), pf = r == r0;
            const uint32_t* xp = (const uint32_t*)job->x + (size_t)r * pairs + kb;
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
    const int MR, const int NP, const float* x /* (MR, xs) bf16-exact f32 */, int xs,
    const uint16_t* w, size_t ws, int kc, float* y, int ldy, int ncols, int accumulate, int prefetch) {
    __m512 c[F32_MR][F32_NP];
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) c[r][p] = _mm512_setzero_ps();
    for (int j = 0; j < kc; j++) {
        __m512 even[F32_NP], odd[F32_NP];
        for (int p = 0; p < NP; p++) {
            __m512i b = _mm512_load_si512((const void*)(w + p * ws + (size_t)j * 32));
            if (prefetch) _mm_prefetch((const char*)(w + p * ws + (size_t)j * 32) + PREFETCH_BYTES, _MM_HINT_T0);
            even[p] = _mm512_castsi512_ps(_mm512_slli_epi32(b, 16));
            odd[p] = _mm512_castsi512_ps(_mm512_and_si512(b, high));
        }
        for (int r = 0; r < MR; r++) {
            __m512 x0 = _mm512_set1_ps(x[(size_t)r * xs + 2 * j]), x1 = _mm512_set1_ps(x[(size_t)r * xs + 2 * j + 1]);
            for (int p = 0; p < NP; p++) c[r][p] = _mm512_fmadd_ps(x1, odd[p], _mm512_fmadd_ps(x0, even[p], c[r][p]));
        }
    }
    for (int r = 0; r < MR; r++)
        for (int p = 0; p < NP; p++) {
            int cols = panel_cols(ncols, p);
            if (cols == 0) continue;
            __mmask16 mask = (__mmask16)(cols == 16 ? 0xffff : (1u << cols) - 1);
            float* yp = y + (size_t)r * ldy + 16 * p;
            __m512 v = c[r][p];
            if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, yp));
            _mm512_mask_storeu_ps(yp, mask, v);
        }
}

#define F32_ROWS(NP_)                                                                                 \
    switch (mr) {                                                                                     \
    case 4: kernel_avx512(4, NP_, xp, 2 * pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;         \
    case 3: kernel_avx512(3, NP_, xp, 2 * pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;         \
    case 2: kernel_avx512(2, NP_, xp, 2 * pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;         \
    default: kernel_avx512(1, NP_, xp, 2 * pairs, wp, ws, kc, yp, n, ncols, kb > 0, pf); break;        \
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
            const float* xp = (const float*)job->x + (size_t)r * 2 * pairs + 2 * kb;
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

#define AVX2_MR 4

/* One panel: 16 columns as two 8-lane halves. */
STEER_INLINE STEER_TARGET_AVX2 void kernel_avx2(
    const int MR, const float* x, int xs, const uint16_t* w, int kc, float* y, int ldy, int cols, int accumulate, int prefetch) {
    __m256 c[AVX2_MR][2];
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
    for (int j = 0; j < kc; j++) {
        if (prefetch) _mm_prefetch((const char*)(w + (size_t)j * 32) + PREFETCH_BYTES, _MM_HINT_T0);
        for (int h = 0; h < 2; h++) {
            __m256i b = _mm256_load_si256((const __m256i*)(w + (size_t)j * 32 + 16 * h));
            __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)), odd = _mm256_castsi256_ps(_mm256_and_si256(b, high));
            for (int r = 0; r < MR; r++) {
                __m256 x0 = _mm256_broadcast_ss(x + (size_t)r * xs + 2 * j), x1 = _mm256_broadcast_ss(x + (size_t)r * xs + 2 * j + 1);
                c[r][h] = _mm256_fmadd_ps(x1, odd, _mm256_fmadd_ps(x0, even, c[r][h]));
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        float* yp = y + (size_t)r * ldy;
        if (cols == 16) {
            __m256 lo = c[r][0], hi = c[r][1];
            if (accumulate) { lo = _mm256_add_ps(lo, _mm256_loadu_ps(yp)); hi = _mm256_add_ps(hi, _mm256_loadu_ps(yp + 8)); }
            _mm256_storeu_ps(yp, lo);
            _mm256_storeu_ps(yp + 8, hi);
        } else {
            float t[16];
            _mm256_storeu_ps(t, c[r][0]);
            _mm256_storeu_ps(t + 8, c[r][1]);
            for (int i = 0; i < cols; i++) yp[i] = accumulate ? yp[i] + t[i] : t[i];
        }
    }
}

STEER_TARGET_AVX2 static void task_avx2(const gemm_job* job, int p0, int np, int r0, int r1) {
    int pairs = job->pairs, n = job->n;
    size_t ws = (size_t)pairs * 32;
    for (int p = p0; p < p0 + np; p++) {
        int cols = panel_cols(n, p);
        for (int kb = 0; kb < pairs; kb += KC) {
            int kc = STEER_MIN(KC, pairs - kb);
            const uint16_t* wp = job->w + (size_t)p * ws + (size_t)kb * 32;
            for (int r = r0; r < r1; r += AVX2_MR) {
                int mr = STEER_MIN(AVX2_MR, r1 - r), pf = r == r0;
                const float* xp = (const float*)job->x + (size_t)r * 2 * pairs + 2 * kb;
                float* yp = job->y + (size_t)r * n + 16 * p;
                switch (mr) {
                case 4: kernel_avx2(4, xp, 2 * pairs, wp, kc, yp, n, cols, kb > 0, pf); break;
                case 3: kernel_avx2(3, xp, 2 * pairs, wp, kc, yp, n, cols, kb > 0, pf); break;
                case 2: kernel_avx2(2, xp, 2 * pairs, wp, kc, yp, n, cols, kb > 0, pf); break;
                default: kernel_avx2(1, xp, 2 * pairs, wp, kc, yp, n, cols, kb > 0, pf); break;
                }
            }
        }
    }
}
#endif

/* ---- scalar --------------------------------------------------------------------------- */

static void task_scalar(const gemm_job* job, int p0, int np, int r0, int r1) {
    int pairs = job->pairs, n = job->n;
    const float* x = (const float*)job->x;
    for (int p = p0; p < p0 + np; p++) {
        const uint16_t* wp = job->w + (size_t)p * pairs * 32;
        int cols = panel_cols(n, p);
        for (int r = r0; r < r1; r++) {
            const float* xr = x + (size_t)r * 2 * pairs;
            float acc[16] = {0};
            for (int j = 0; j < pairs; j++)
                for (int l = 0; l < 16; l++) {
                    acc[l] += xr[2 * j] * steer_bf16_to_f32(wp[(size_t)j * 32 + 2 * l]);
                    acc[l] += xr[2 * j + 1] * steer_bf16_to_f32(wp[(size_t)j * 32 + 2 * l + 1]);
                }
            for (int l = 0; l < cols; l++) job->y[(size_t)r * n + 16 * p + l] = acc[l];
        }
    }
}

/* ---- driver --------------------------------------------------------------------------- */

static int g_task_isa;

static void gemm_task(void* ctx, int task, int thread) {
    (void)thread;
    const gemm_job* job = (const gemm_job*)ctx;
    int g = task % job->groups, rc = task / job->groups;
    int p0 = g * job->np, np = STEER_MIN(job->np, job->panels - p0);
    int r0 = rc * job->row_chunk, r1 = STEER_MIN(job->m, r0 + job->row_chunk);
    switch (g_task_isa) {
#ifdef STEER_HAVE_X86
    case STEER_ISA_AVX512_BF16: task_bf16(job, p0, np, r0, r1); break;
    case STEER_ISA_AVX512: task_avx512(job, p0, np, r0, r1); break;
    case STEER_ISA_AVX2: task_avx2(job, p0, np, r0, r1); break;
#endif
    default: task_scalar(job, p0, np, r0, r1); break;
    }
}

void steer_gemm_bf16(const float* x, int m, int k, const uint16_t* packed, int n, float* y) {
    if (m <= 0 || n <= 0) return;
    int isa = steer_isa_current(), threads = steer_pool_threads();
    gemm_job job;
    job.pairs = (k + 1) / 2;
    job.panels = (n + 15) / 16;
    job.m = m;
    job.n = n;
    job.w = packed;
    job.y = y;
    job.x = convert_x(x, m, k, job.pairs, isa != STEER_ISA_AVX512_BF16);
    job.np = isa == STEER_ISA_AVX2 ? 2 : 4;
    job.groups = (job.panels + job.np - 1) / job.np;
    /* Split rows only when there are too few panel groups to keep every thread busy. */
    int mr = isa == STEER_ISA_AVX512_BF16 ? 6 : 4;
    int row_chunks = job.groups >= 4 * threads ? 1 : STEER_MIN((m + mr - 1) / mr, (4 * threads + job.groups - 1) / job.groups);
    job.row_chunk = (m + row_chunks - 1) / row_chunks;
    job.row_chunk = (job.row_chunk + mr - 1) / mr * mr;
    row_chunks = (m + job.row_chunk - 1) / job.row_chunk;
    g_task_isa = isa;
    steer_parallel_for(job.groups * row_chunks, gemm_task, &job);
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
