/* Causal grouped-query attention over a batch of sequences, each with its own f32 KV cache.
 *
 * Roofline (nh query heads, nkv KV heads, G = nh / nkv, head size hd):
 *   prefill of n tokens from an empty cache: QKᵀ and P·V are each 2·hd flops per visible
 *   (query, key) pair, so flops = 4·nh·hd·n(n+1)/2 (1.08 GFLOP for n = 512 at Llama-3.2-1B's
 *   nh 32, hd 64); K/V are 2·n·nkv·hd·4 bytes (2 MB) and stay in L2, so prefill is compute
 *   bound: ≈ 3.1 ms at 350 GFLOP/s (2 cores × 16 f32 FMA lanes × 2 ports; with AVX2, 8 lanes,
 *   ≈ 5.4 ms at the 200 GFLOP/s of the 2-core Zen 3 CI machine). The softmax adds
 *   ≈ 12 vector ops per 16 scores against 2·hd FMAs per score lane, i.e. < 10 % for hd = 64.
 *   decode (n = 1): every cached key and value row is read once, 2·len·nkv·hd·4 bytes per
 *   sequence, against 4·nh·hd·len flops: G/2 flops per byte (2 for G = 4), far below the
 *   machine balance (≈ 12 flops per byte: 350 GFLOP/s over 30 GB/s), so decode is bound by
 *   reading K and V: 64 sequences × 512 cached keys = 128 MB of K/V ≈ 4.3 ms at 30 GB/s when
 *   it comes from memory (in L2/L3 it can go faster).
 *
 * AVX-512F path
 *   Prefill (n > 1): a task is (sequence, KV head, tile of tq tokens); the tile's queries of
 *   every head in the KV head's group (M = tq·G ≤ 64 query vectors) share each K/V block read.
 *   Query vectors run along the 16 lanes of a zmm (lane = token·G + head), so everything per
 *   query (running max, running sum, causal position, rescale factor) is a vector and no
 *   horizontal reduction is needed:
 *     Sᵀ (60 keys × M) = K_block · Qᵀ   broadcast K[j][d], FMA with Qᵀ[d] (R keys × M/16 zmm
 *                                       accumulators, 6×4 or 8×≤3), block max per lane in the
 *                                       epilogue;
 *     online softmax                    when any lane's block max passes its running max m,
 *                                       rescale the running sum and Oᵀ by 2^(m_old − m_new)
 *                                       (skipped otherwise); P = 2^(Sᵀ − m);
 *     Oᵀ (hd × M) += Vᵀ_block · Pᵀ      broadcast V[j][d], FMA with Pᵀ[j] (D dims × M/16 zmm,
 *                                       D the largest divisor of hd up to 6, or 8 when M ≤ 48).
 *   Qᵀ is filled and Oᵀ written back through 16 × 16 in-register transposes; tasks run
 *   costliest (last) tiles first. Queries are pre-scaled by log2(e)/sqrt(hd), so the softmax
 *   is exp2 (steer_exp2_avx512: exact reduction, degree-6 minimax, vscalefps). The causal mask
 *   is applied only to key groups past the tile's first token. Any hd works (K and V elements
 *   are broadcast and hd is only a loop count).
 *   Decode (n = 1): a task is (sequence, range of KV heads, range of keys) and streams its K/V
 *   rows once in blocks of 64 keys, prefetching 16 rows ahead (the rows of one KV head are
 *   nkv·hd apart, too sparse for the hardware prefetchers). With enough sequences a task is a
 *   whole sequence, whose rows are then read front to back. Scores vectorize over hd: 16
 *   partial dot products (4 heads × 4 keys, 2 × 8 or 1 × 16) reduce to one zmm in a 4-level
 *   shuffle tree; the softmax then runs along keys, and P·V vectorizes over hd (masked loads
 *   for hd % 16). When the batch has fewer than 8 tasks per thread, caches are split into key
 *   ranges whose partial (max, sum, Σ p·v) are merged after the parallel pass, so a single
 *   sequence keeps every core busy.
 *
 * AVX2 path (8 f32 lanes per ymm, 16 registers): the AVX-512 structure and the same task plan.
 *   Prefill: the tile's M = tq·G ≤ 64 query vectors are nc = ⌈M / 8⌉ ymm columns, taken in
 *   pairs. Sᵀ in 6-key × 2-ymm tiles (12 accumulators, 2 Qᵀ rows and 1 broadcast: 15
 *   registers), 12 keys at a time so their rows stay in L1 while every pair uses them; P·V in
 *   6-dim × 2-ymm tiles and one more pass for hd % 6; an odd last column takes 12-key and 6-dim
 *   tiles. Qᵀ and Oᵀ go through 8 × 8 in-register transposes (masked loads and stores for
 *   hd % 8). The softmax is steer_exp2_avx2: the same polynomial, 2^n built in the exponent
 *   bits, inputs clamped so that masked scores give exactly 0.
 *   Decode: 8 partial dot products (4 heads × 2 keys, 2 × 4 or 1 × 8) reduce to one ymm in a
 *   3-level shuffle tree; P·V over up to 4 heads × 2 chunks of 8 dims, then a masked pass for
 *   hd % 8. Key ranges over all KV heads are preferred to per-head tasks whenever they alone
 *   make 8 tasks per thread (whole rows stream better than a 1/nkv strip of each).
 *   Measured on the 2-core Zen 3 CI machine (AVX2 + FMA, no AVX-512; f32 FMA peak ≈ 100
 *   GFLOP/s per core) while another process kept both cores busy, best of several runs of
 *   `out/native-cpu/bench_kernels --attention 1` (one thread, CPU time, so the other load
 *   is left out): prefill n = 512 16.5 ms = 65 GFLOP/s, 66 % of the one-core peak (the score
 *   and P·V loops run at ≈ 85 % of it, exp2 takes ≈ 8 % of the time, the transposes, rescales
 *   and epilogues the rest); decode 64 × 2048 (512 MB of K/V) 10.6 GB/s, 1 × 32768 10.6 GB/s,
 *   about 80 % of the one-thread read probe. With 2 threads (`--attention`) the best runs gave
 *   16.9 ms for prefill, 49 ms (10.9 GB/s) and 9.3 ms (14.5 GB/s) for the decodes, 3.0×, 3.2×
 *   and 5.5× the plain C tile, which had been the AVX2 path.
 *
 * Portable path: the plain C tile below (K block transposed to (hd, BK), scores vectorized over
 * keys by the compiler), one task per (sequence, KV head, tile). */
#include "internal.h"

#define BK 64
#define MAX_M 64
#define MAX_HD 256

typedef struct attn_job {
    const float* q;
    float* out;
    const steer_attn_seq* seqs;
    const int32_t* first_task; /* (nseq + 1): tasks of sequence s are [first_task[s], first_task[s+1]) */
    int nseq, nh, nkv, hd, group, bq;
} attn_job;

typedef struct attn_scratch {
    float q[MAX_M * MAX_HD];   /* (M, hd) scaled queries */
    float acc[MAX_M * MAX_HD]; /* (M, hd) running Σ p·v */
    float kt[MAX_HD * BK];     /* (hd, BK) transposed key block */
    float s[BK];               /* scores of one query against the block */
    float max[MAX_M], sum[MAX_M];
} attn_scratch;

static void attend_tile(const attn_job* j, const steer_attn_seq* seq, int kvh, int t0, int t1, attn_scratch* sc) {
    int hd = j->hd, G = j->group, qdim = j->nh * hd, kvdim = j->nkv * hd;
    int M = (t1 - t0) * G;
    float scale = 1.0f / sqrtf((float)hd);
    /* query vector qi = token (t0 + qi / G), head kvh·G + qi % G */
    for (int qi = 0; qi < M; qi++) {
        const float* src = j->q + (size_t)(seq->row + t0 + qi / G) * qdim + (size_t)(kvh * G + qi % G) * hd;
        float* STEER_RESTRICT dst = sc->q + (size_t)qi * hd;
        for (int d = 0; d < hd; d++) dst[d] = src[d] * scale;
        float* STEER_RESTRICT acc = sc->acc + (size_t)qi * hd;
        for (int d = 0; d < hd; d++) acc[d] = 0;
        sc->max[qi] = -INFINITY;
        sc->sum[qi] = 0;
    }
    int keys = seq->start + t1; /* the last token of the tile sees this many */
    const float* kbase = seq->k + (size_t)kvh * hd;
    const float* vbase = seq->v + (size_t)kvh * hd;
    for (int kb = 0; kb < keys; kb += BK) {
        int bk = STEER_MIN(BK, keys - kb);
        for (int jj = 0; jj < bk; jj++) {
            const float* krow = kbase + (size_t)(kb + jj) * kvdim;
            for (int d = 0; d < hd; d++) sc->kt[d * BK + jj] = krow[d];
        }
        for (int jj = bk; jj < BK; jj++)
            for (int d = 0; d < hd; d++) sc->kt[d * BK + jj] = 0;
        for (int qi = 0; qi < M; qi++) {
            int visible = STEER_MIN(seq->start + t0 + qi / G + 1 - kb, bk);
            if (visible <= 0) continue;
            const float* STEER_RESTRICT qv = sc->q + (size_t)qi * hd;
            float* STEER_RESTRICT s = sc->s;
            for (int jj = 0; jj < BK; jj++) s[jj] = 0;
            for (int d = 0; d < hd; d++) {
                const float* STEER_RESTRICT kt = sc->kt + d * BK;
                float qd = qv[d];
                for (int jj = 0; jj < BK; jj++) s[jj] = fmaf(qd, kt[jj], s[jj]);
            }
            float bmax = -INFINITY;
            for (int jj = 0; jj < visible; jj++) bmax = s[jj] > bmax ? s[jj] : bmax;
            float old = sc->max[qi], now = old > bmax ? old : bmax;
            float correction = steer_expf(old - now);
            float psum = 0;
            for (int jj = 0; jj < visible; jj++) {
                s[jj] = steer_expf(s[jj] - now);
                psum += s[jj];
            }
            sc->sum[qi] = sc->sum[qi] * correction + psum;
            sc->max[qi] = now;
            float* STEER_RESTRICT acc = sc->acc + (size_t)qi * hd;
            if (correction != 1.0f)
                for (int d = 0; d < hd; d++) acc[d] *= correction;
            for (int jj = 0; jj < visible; jj++) {
                const float* STEER_RESTRICT vrow = vbase + (size_t)(kb + jj) * kvdim;
                float p = s[jj];
                for (int d = 0; d < hd; d++) acc[d] = fmaf(p, vrow[d], acc[d]);
            }
        }
    }
    for (int qi = 0; qi < M; qi++) {
        float* dst = j->out + (size_t)(seq->row + t0 + qi / G) * qdim + (size_t)(kvh * G + qi % G) * hd;
        const float* acc = sc->acc + (size_t)qi * hd;
        float inv = 1.0f / sc->sum[qi];
        for (int d = 0; d < hd; d++) dst[d] = acc[d] * inv;
    }
}

/* The sequence whose task range [first[s], first[s + 1]) holds `task`. */
static int seq_of_task(const int32_t* first, int nseq, int task) {
    int lo = 0, hi = nseq - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (first[mid] <= task) lo = mid; else hi = mid - 1;
    }
    return lo;
}

static void attn_task(void* ctx, int task, int thread) {
    const attn_job* j = (const attn_job*)ctx;
    int s = seq_of_task(j->first_task, j->nseq, task);
    const steer_attn_seq* seq = &j->seqs[s];
    int local = task - j->first_task[s];
    int tiles = (seq->n + j->bq - 1) / j->bq;
    int kvh = local / tiles, tile = tiles - 1 - local % tiles; /* costliest (last) tiles first */
    int t0 = tile * j->bq, t1 = STEER_MIN(seq->n, t0 + j->bq);
    attn_scratch* sc = (attn_scratch*)steer_thread_scratch(thread, sizeof(attn_scratch));
    attend_tile(j, seq, kvh, t0, t1, sc);
}

static void attention_generic(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd) {
    attn_job j = {q, out, seqs, NULL, nseq, nh, nkv, hd, nh / nkv, 0};
    j.bq = STEER_MAX(1, MAX_M / j.group);
    int32_t* first = (int32_t*)steer_call_scratch(sizeof(int32_t) * (size_t)(nseq + 1));
    first[0] = 0;
    for (int s = 0; s < nseq; s++) first[s + 1] = first[s] + nkv * ((seqs[s].n + j.bq - 1) / j.bq);
    j.first_task = first;
    steer_parallel_for(first[nseq], attn_task, &j);
}
/* ---- AVX-512F path --------------------------------------------------------------------- */

#ifdef STEER_HAVE_X86

#define FA_NEG (-1e30f)        /* a masked score: 2^(FA_NEG − anything finite) is exactly 0 */
#define FA_BK 60               /* prefill: keys per block, a multiple of the 6-key micro-tile */
#define FA_DBK 64              /* decode: keys per block */
#define FA_SPLIT_MIN 128       /* decode: fewest keys in a key range of a split sequence */
#define FA_PF_ROWS 16          /* decode: software prefetch distance along each head's rows */
#define FA_PF_HINT _MM_HINT_T0

static const float fa_zeros[MAX_HD]; /* stands in for key rows past the end of the cache */

/* Fully unrolled small loops keep the micro-kernels' accumulator arrays in registers. */
#if defined(__GNUC__) && !defined(__clang__)
#define FA_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define FA_UNROLL _Pragma("unroll")
#else
#define FA_UNROLL
#endif

typedef struct fa_job {
    const float* q;
    float* out;
    const steer_attn_seq* seqs;
    int nseq, nh, nkv, hd, group;
    int wide;                   /* 1: AVX-512F kernels, 0: AVX2 */
    int tq;                     /* prefill: tokens per tile, tq · group ≤ MAX_M */
    int hparts;                 /* decode: KV-head ranges per sequence */
    float qscale;               /* log2(e) / sqrt(hd): scores come out in log2 units */
    size_t tile_scratch;        /* bytes */
    size_t decode_scratch;      /* bytes */
    const int32_t* first_task;  /* (nseq + 1) */
    const int32_t* chunks;      /* (nseq) decode key ranges (1: not split) */
    const int32_t* chunk_keys;  /* (nseq) keys per range */
    const int32_t* first_slot;  /* (nseq) first partial slot of a split sequence */
    float* partial;             /* slot (first_slot + range) · nkv + kvh: m (G), l (G), Σ p·v (G, hd) */
} fa_job;

/* -- prefill: one tile of query vectors along lanes, MZ zmm wide -- */

/* Scores of R keys (rows of Sᵀ) against the tile's MZ·16 query lanes, and their running
 * max per lane. Keys past the visible range of a lane (or past the block) get FA_NEG. */
STEER_TARGET_AVX512 STEER_INLINE void fa_scores(const int R, const int MZ, const float* const* krow, const float* qt, int hd,
                                                int mp, float* st, __m512* bmax, const __m512i* pos, int key0, int nvalid,
                                                int masked) {
    __m512 acc[8][4];
    FA_UNROLL for (int r = 0; r < R; r++)
        FA_UNROLL for (int z = 0; z < MZ; z++) acc[r][z] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 qv[4];
        FA_UNROLL for (int z = 0; z < MZ; z++) qv[z] = _mm512_load_ps(qt + (size_t)d * mp + 16 * z);
        FA_UNROLL for (int r = 0; r < R; r++) {
            __m512 kv = _mm512_set1_ps(krow[r][d]);
            FA_UNROLL for (int z = 0; z < MZ; z++) acc[r][z] = _mm512_fmadd_ps(kv, qv[z], acc[r][z]);
        }
    }
    const __m512 neg = _mm512_set1_ps(FA_NEG);
    FA_UNROLL for (int r = 0; r < R; r++)
        FA_UNROLL for (int z = 0; z < MZ; z++) {
            __m512 s = acc[r][z];
            if (masked) {
                __mmask16 vis = r < nvalid ? _mm512_cmpge_epi32_mask(pos[z], _mm512_set1_epi32(key0 + r)) : 0;
                s = _mm512_mask_blend_ps(vis, neg, s);
            }
            _mm512_store_ps(st + (size_t)r * mp + 16 * z, s);
            bmax[z] = _mm512_max_ps(bmax[z], s);
        }
}

/* Oᵀ rows d0 .. d0 + D (D × MZ zmm in registers) += Σ_j V[j][d] · Pᵀ[j] over the block's bk keys. */
STEER_TARGET_AVX512 STEER_INLINE void fa_pv(const int D, const int MZ, float* ot, int mp, const float* st, const float* v,
                                            size_t kvdim, int bk) {
    __m512 acc[8][4];
    FA_UNROLL for (int dd = 0; dd < D; dd++)
        FA_UNROLL for (int z = 0; z < MZ; z++) acc[dd][z] = _mm512_load_ps(ot + (size_t)dd * mp + 16 * z);
    for (int jj = 0; jj < bk; jj++, v += kvdim) {
        __m512 p[4];
        FA_UNROLL for (int z = 0; z < MZ; z++) p[z] = _mm512_load_ps(st + (size_t)jj * mp + 16 * z);
        FA_UNROLL for (int dd = 0; dd < D; dd++) {
            __m512 vb = _mm512_set1_ps(v[dd]);
            FA_UNROLL for (int z = 0; z < MZ; z++) acc[dd][z] = _mm512_fmadd_ps(vb, p[z], acc[dd][z]);
        }
    }
    FA_UNROLL for (int dd = 0; dd < D; dd++)
        FA_UNROLL for (int z = 0; z < MZ; z++) _mm512_store_ps(ot + (size_t)dd * mp + 16 * z, acc[dd][z]);
}

/* Dims per P·V micro-tile: the largest divisor of hd up to 6 (4-zmm tiles) or 8 (narrower). */
static int fa_pv_dims(int hd, int mz) {
    for (int d = mz == 4 ? 6 : 8; d > 1; d--)
        if (hd % d == 0) return d;
    return 1;
}

/* Scratch floats of a tile: Qᵀ and Oᵀ (hd, 64), Sᵀ (FA_BK + 8, 64), positions (64). */
static size_t fa_tile_floats(int hd) { return (size_t)2 * hd * MAX_M + (size_t)(FA_BK + 8) * MAX_M + MAX_M; }

/* In-register transpose of a 16 × 16 block: r[i] lane c ↔ r[c] lane i. */
STEER_TARGET_AVX512 STEER_INLINE void fa_transpose16(__m512* r) {
    __m512 t[16], u[16], v[16];
    FA_UNROLL for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    FA_UNROLL for (int k = 0; k < 4; k++) { /* u[4k + m], 128-bit lane L: column 4L + m of rows 4k .. 4k + 3 */
        __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
        __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
        u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    FA_UNROLL for (int m = 0; m < 4; m++) {
        v[m] = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
        v[4 + m] = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
        v[8 + m] = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
        v[12 + m] = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
    }
    FA_UNROLL for (int m = 0; m < 4; m++) {
        r[m] = _mm512_shuffle_f32x4(v[m], v[8 + m], 0x88);
        r[4 + m] = _mm512_shuffle_f32x4(v[4 + m], v[12 + m], 0x88);
        r[8 + m] = _mm512_shuffle_f32x4(v[m], v[8 + m], 0xdd);
        r[12 + m] = _mm512_shuffle_f32x4(v[4 + m], v[12 + m], 0xdd);
    }
}

STEER_TARGET_AVX512 STEER_INLINE void fa_tile(const int MZ, const fa_job* j, const steer_attn_seq* seq, int kvh, int t0, int t1,
                                              float* scratch) {
    const int R = MZ == 4 ? 6 : 8;
    const int hd = j->hd, G = j->group, mp = 16 * MZ, M = (t1 - t0) * G;
    const size_t qdim = (size_t)j->nh * hd, kvdim = (size_t)j->nkv * hd;
    float* qt = scratch;                            /* (hd, mp) scaled queries */
    float* ot = qt + (size_t)hd * mp;               /* (hd, mp) running Σ p·v */
    float* st = ot + (size_t)hd * mp;               /* (FA_BK + 8, mp) scores, then probabilities */
    int32_t* posb = (int32_t*)(st + (size_t)(FA_BK + 8) * mp); /* (mp) position of each lane's token */
    /* Qᵀ: 16 lanes × 16 dims at a time through an in-register transpose */
    const __m512 qscale = _mm512_set1_ps(j->qscale);
    for (int z = 0; z < MZ; z++) {
        const float* src[16];
        FA_UNROLL for (int i = 0; i < 16; i++) {
            int lane = 16 * z + i, t = lane / G, g = lane % G;
            src[i] = lane < M ? j->q + (size_t)(seq->row + t0 + t) * qdim + (size_t)(kvh * G + g) * hd : NULL;
            posb[lane] = lane < M ? seq->start + t0 + t : INT32_MAX; /* padding lanes see every key */
        }
        for (int d0 = 0; d0 < hd; d0 += 16) {
            __mmask16 dm = hd - d0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hd - d0)) - 1);
            __m512 r[16];
            FA_UNROLL for (int i = 0; i < 16; i++)
                r[i] = src[i] ? _mm512_mul_ps(_mm512_maskz_loadu_ps(dm, src[i] + d0), qscale) : _mm512_setzero_ps();
            fa_transpose16(r);
            FA_UNROLL for (int i = 0; i < 16; i++)
                if (d0 + i < hd) _mm512_store_ps(qt + (size_t)(d0 + i) * mp + 16 * z, r[i]);
        }
    }
    memset(ot, 0, sizeof(float) * (size_t)hd * mp);
    const __m512 zero = _mm512_setzero_ps();
    __m512i pos[4];
    __m512 m[4], l[4], bmax[4];
    FA_UNROLL for (int z = 0; z < MZ; z++) {
        pos[z] = _mm512_load_si512((const void*)(posb + 16 * z));
        m[z] = l[z] = zero;
    }
    const int keys = seq->start + t1, minpos = seq->start + t0;
    const float* kbase = seq->k + (size_t)kvh * hd;
    const float* vbase = seq->v + (size_t)kvh * hd;
    const int D = fa_pv_dims(hd, MZ);
    for (int kb = 0; kb < keys; kb += FA_BK) {
        const int bk = STEER_MIN(FA_BK, keys - kb), first = kb == 0;
        FA_UNROLL for (int z = 0; z < MZ; z++) bmax[z] = _mm512_set1_ps(FA_NEG);
        for (int j0 = 0; j0 < bk; j0 += R) {
            const int nvalid = STEER_MIN(R, bk - j0);
            const float* krow[8];
            FA_UNROLL for (int r = 0; r < R; r++) krow[r] = r < nvalid ? kbase + (size_t)(kb + j0 + r) * kvdim : fa_zeros;
            const int masked = nvalid < R || kb + j0 + R - 1 > minpos;
            fa_scores(R, MZ, krow, qt, hd, mp, st + (size_t)j0 * mp, bmax, pos, kb + j0, nvalid, masked);
        }
        /* Online softmax: where a lane's block max passes its running max m, m moves up and
         * the sum and Oᵀ accumulated so far are rescaled by 2^(m_old − m_new). */
        if (first) {
            FA_UNROLL for (int z = 0; z < MZ; z++) m[z] = bmax[z];
        } else {
            __mmask16 grew = 0;
            FA_UNROLL for (int z = 0; z < MZ; z++) grew |= _mm512_cmp_ps_mask(bmax[z], m[z], _CMP_GT_OQ);
            if (grew) {
                __m512 corr[4];
                FA_UNROLL for (int z = 0; z < MZ; z++) {
                    __m512 mnew = _mm512_max_ps(m[z], bmax[z]);
                    corr[z] = steer_exp2_avx512(_mm512_sub_ps(m[z], mnew));
                    m[z] = mnew;
                    l[z] = _mm512_mul_ps(l[z], corr[z]);
                }
                for (int d = 0; d < hd; d++)
                    FA_UNROLL for (int z = 0; z < MZ; z++) {
                        float* o = ot + (size_t)d * mp + 16 * z;
                        _mm512_store_ps(o, _mm512_mul_ps(_mm512_load_ps(o), corr[z]));
                    }
            }
        }
        for (int jj = 0; jj < bk; jj++)
            FA_UNROLL for (int z = 0; z < MZ; z++) {
                float* s = st + (size_t)jj * mp + 16 * z;
                __m512 p = steer_exp2_avx512(_mm512_sub_ps(_mm512_load_ps(s), m[z]));
                l[z] = _mm512_add_ps(l[z], p);
                _mm512_store_ps(s, p);
            }
        const float* vb = vbase + (size_t)kb * kvdim;
        switch (D) {
#define FA_PV_CASE(DD) \
        case DD: for (int d0 = 0; d0 < hd; d0 += DD) fa_pv(DD, MZ, ot + (size_t)d0 * mp, mp, st, vb + d0, kvdim, bk); break;
        FA_PV_CASE(8) FA_PV_CASE(7) FA_PV_CASE(6) FA_PV_CASE(5) FA_PV_CASE(4) FA_PV_CASE(3) FA_PV_CASE(2)
        default: for (int d0 = 0; d0 < hd; d0++) fa_pv(1, MZ, ot + (size_t)d0 * mp, mp, st, vb + d0, kvdim, bk); break;
#undef FA_PV_CASE
        }
    }
    /* out = Oᵀ / l, transposed back 16 lanes × 16 dims at a time */
    for (int z = 0; z < MZ; z++) {
        const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), l[z]);
        for (int d0 = 0; d0 < hd; d0 += 16) {
            __mmask16 dm = hd - d0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hd - d0)) - 1);
            __m512 r[16];
            FA_UNROLL for (int i = 0; i < 16; i++)
                r[i] = d0 + i < hd ? _mm512_mul_ps(_mm512_load_ps(ot + (size_t)(d0 + i) * mp + 16 * z), inv) : _mm512_setzero_ps();
            fa_transpose16(r);
            FA_UNROLL for (int i = 0; i < 16; i++) {
                int lane = 16 * z + i, t = lane / G, g = lane % G;
                if (lane >= M) break;
                _mm512_mask_storeu_ps(j->out + (size_t)(seq->row + t0 + t) * qdim + (size_t)(kvh * G + g) * hd + d0, dm, r[i]);
            }
        }
    }
}

STEER_TARGET_AVX512 static void fa_tile1(const fa_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, float* sc) { fa_tile(1, j, s, kvh, t0, t1, sc); }
STEER_TARGET_AVX512 static void fa_tile2(const fa_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, float* sc) { fa_tile(2, j, s, kvh, t0, t1, sc); }
STEER_TARGET_AVX512 static void fa_tile3(const fa_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, float* sc) { fa_tile(3, j, s, kvh, t0, t1, sc); }
STEER_TARGET_AVX512 static void fa_tile4(const fa_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, float* sc) { fa_tile(4, j, s, kvh, t0, t1, sc); }

/* -- decode: one token, scores vectorized over hd -- */

/* Horizontal sums of 16 vectors: lane i of the result is Σ v[i]. */
STEER_TARGET_AVX512 STEER_INLINE __m512 fa_reduce16(const __m512* v) {
    __m512 a[8], b[4], c[2];
    FA_UNROLL for (int i = 0; i < 8; i++) /* per 128-bit lane: v2i, v2i+1, v2i, v2i+1 */
        a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    FA_UNROLL for (int i = 0; i < 4; i++) { /* per 128-bit lane: v4i .. v4i+3 */
        __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
        b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    FA_UNROLL for (int i = 0; i < 2; i++) /* 128-bit lanes: b2i (halves), b2i+1 (halves) */
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Dot products of HG query heads with KG keys (HG · KG = 16): lane h·KG + i is q_h · k_i.
 * Keys are rows krow + i·stride; qs rows are zero-padded to hdp, so only the key tail is masked. */
STEER_TARGET_AVX512 STEER_INLINE __m512 fa_dots(const int HG, const int KG, const float* krow, size_t stride, const float* qs,
                                                int hdp, int nfull, __mmask16 tail, size_t pf) {
    __m512 acc[16];
    FA_UNROLL for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (int c = 0; c < nfull; c++) {
        __m512 qv[4];
        FA_UNROLL for (int h = 0; h < HG; h++) qv[h] = _mm512_load_ps(qs + (size_t)h * hdp + 16 * c);
        FA_UNROLL for (int i = 0; i < KG; i++) {
            _mm_prefetch((const char*)(krow + i * stride + 16 * c + pf), FA_PF_HINT);
            __m512 kv = _mm512_loadu_ps(krow + i * stride + 16 * c);
            FA_UNROLL for (int h = 0; h < HG; h++) acc[h * KG + i] = _mm512_fmadd_ps(qv[h], kv, acc[h * KG + i]);
        }
    }
    if (tail) {
        __m512 qv[4];
        FA_UNROLL for (int h = 0; h < HG; h++) qv[h] = _mm512_load_ps(qs + (size_t)h * hdp + 16 * nfull);
        FA_UNROLL for (int i = 0; i < KG; i++) {
            _mm_prefetch((const char*)(krow + i * stride + 16 * nfull + pf), FA_PF_HINT);
            __m512 kv = _mm512_maskz_loadu_ps(tail, krow + i * stride + 16 * nfull);
            FA_UNROLL for (int h = 0; h < HG; h++) acc[h * KG + i] = _mm512_fmadd_ps(qv[h], kv, acc[h * KG + i]);
        }
    }
    return fa_reduce16(acc);
}

/* o rows (HG heads, DC chunks of 16 dims in registers) += Σ_j p_h[j] · V[j] over bk keys. */
STEER_TARGET_AVX512 STEER_INLINE void fa_dec_pv(const int HG, const int DC, float* o, int hdp, const float* p, const float* v,
                                                size_t kvdim, int bk, const __mmask16* mk, size_t pf) {
    __m512 acc[4][4];
    FA_UNROLL for (int h = 0; h < HG; h++)
        FA_UNROLL for (int c = 0; c < DC; c++) acc[h][c] = _mm512_load_ps(o + (size_t)h * hdp + 16 * c);
    for (int jj = 0; jj < bk; jj++, v += kvdim) {
        __m512 vv[4];
        FA_UNROLL for (int c = 0; c < DC; c++) {
            _mm_prefetch((const char*)(v + 16 * c + pf), FA_PF_HINT);
            vv[c] = _mm512_maskz_loadu_ps(mk[c], v + 16 * c);
        }
        FA_UNROLL for (int h = 0; h < HG; h++) {
            __m512 pb = _mm512_set1_ps(p[(size_t)h * FA_DBK + jj]);
            FA_UNROLL for (int c = 0; c < DC; c++) acc[h][c] = _mm512_fmadd_ps(pb, vv[c], acc[h][c]);
        }
    }
    FA_UNROLL for (int h = 0; h < HG; h++)
        FA_UNROLL for (int c = 0; c < DC; c++) _mm512_store_ps(o + (size_t)h * hdp + 16 * c, acc[h][c]);
}

/* The last `valid` key rows of a decode cache (row stride kvdim) copied into ktail as KG rows of
 * hdp floats, zero past valid rows and past hd: the dot-product tiles then never read past the
 * cache. Returns ktail. */
static const float* fa_key_tail(const float* kr, size_t kvdim, int valid, int KG, int hd, int hdp, float* ktail) {
    for (int i = 0; i < KG; i++)
        for (int d = 0; d < hdp; d++) ktail[(size_t)i * hdp + d] = i < valid && d < hd ? kr[(size_t)i * kvdim + d] : 0.0f;
    return ktail;
}

/* Scratch floats of a decode task over `heads` query heads, for vectors of `lanes` floats
 * (16: AVX-512, 8: AVX2). */
static size_t fa_decode_floats(int heads, int group, int hd, int lanes) {
    size_t hdp = (size_t)(hd + lanes - 1) / lanes * lanes;
    return 2 * (size_t)heads * hdp + (size_t)group * FA_DBK + (size_t)lanes * hdp + 2 * (size_t)heads + (size_t)lanes;
}

/* The token of a decode sequence against keys [k0, k1) for KV heads [h0, h1). Writes the
 * normalized output, or the partial (m, l, Σ p·v) of each KV head to `partial`. */
STEER_TARGET_AVX512 static void fa_decode(const fa_job* j, const steer_attn_seq* seq, int h0, int h1, int k0, int k1,
                                          float* partial, float* scratch) {
    const int hd = j->hd, G = j->group, hdp = (hd + 15) / 16 * 16, nch = hdp / 16, nfull = hd / 16;
    const __mmask16 tail = (__mmask16)((1u << (hd % 16)) - 1);
    const size_t qdim = (size_t)j->nh * hd, kvdim = (size_t)j->nkv * hd;
    const int H = (h1 - h0) * G, keys = seq->start + seq->n;
    float* qs = scratch;                     /* (H, hdp) scaled queries, zero-padded */
    float* o = qs + (size_t)H * hdp;         /* (H, hdp) running Σ p·v */
    float* sc = o + (size_t)H * hdp;         /* (G, FA_DBK) scores, then probabilities, of one block */
    float* ktail = sc + (size_t)G * FA_DBK;  /* (16, hdp) zero-padded copy of the cache's last keys */
    float* m = ktail + 16 * (size_t)hdp;     /* (H) running max */
    float* l = m + H;                        /* (H) running sum */
    const float* qrow = j->q + (size_t)(seq->row + seq->n - 1) * qdim + (size_t)h0 * G * hd;
    const __m512 qscale = _mm512_set1_ps(j->qscale);
    for (int h = 0; h < H; h++) {
        for (int c = 0; c < nch; c++) {
            __mmask16 mk = c < nfull ? (__mmask16)0xffff : tail;
            __m512 x = _mm512_maskz_loadu_ps(mk, qrow + (size_t)h * hd + 16 * c);
            _mm512_store_ps(qs + (size_t)h * hdp + 16 * c, _mm512_mul_ps(x, qscale));
            _mm512_store_ps(o + (size_t)h * hdp + 16 * c, _mm512_setzero_ps());
        }
        m[h] = FA_NEG;
        l[h] = 0;
    }
    const __m512 neg = _mm512_set1_ps(FA_NEG);
    for (int kb = k0; kb < k1; kb += FA_DBK) {
        const int bk = STEER_MIN(FA_DBK, k1 - kb);
        /* each row read also prefetches the row FA_PF_ROWS ahead (0: itself, at the range's end) */
        const size_t pf = kb + FA_DBK + FA_PF_ROWS <= k1 ? (size_t)FA_PF_ROWS * kvdim : 0;
        for (int kvh = h0; kvh < h1; kvh++) {
            const float* kbase = seq->k + (size_t)kb * kvdim + (size_t)kvh * hd;
            const float* vbase = seq->v + (size_t)kb * kvdim + (size_t)kvh * hd;
            const float* qh = qs + (size_t)(kvh - h0) * G * hdp;
            float* oh = o + (size_t)(kvh - h0) * G * hdp;
            float* mh = m + (kvh - h0) * G;
            float* lh = l + (kvh - h0) * G;
            /* scores: sc[g][jj] = q_g · k_jj, in log2 units */
            for (int g0 = 0; g0 < G;) {
                const int HG = G - g0 >= 4 ? 4 : G - g0 >= 2 ? 2 : 1, KG = 16 / HG;
                for (int j0 = 0; j0 < bk; j0 += KG) {
                    const float* kr = kbase + (size_t)j0 * kvdim;
                    size_t stride = kvdim, kpf = pf;
                    if (kb + j0 + KG > keys) { /* would read past the cache: copy the last rows */
                        kr = fa_key_tail(kr, kvdim, keys - kb - j0, KG, hd, hdp, ktail);
                        stride = (size_t)hdp;
                        kpf = 0;
                    }
                    const float* qg = qh + (size_t)g0 * hdp;
                    float* sg = sc + (size_t)g0 * FA_DBK + j0;
                    if (HG == 4) {
                        __m512 z = fa_dots(4, 4, kr, stride, qg, hdp, nfull, tail, kpf);
                        _mm_storeu_ps(sg, _mm512_extractf32x4_ps(z, 0));
                        _mm_storeu_ps(sg + FA_DBK, _mm512_extractf32x4_ps(z, 1));
                        _mm_storeu_ps(sg + 2 * FA_DBK, _mm512_extractf32x4_ps(z, 2));
                        _mm_storeu_ps(sg + 3 * FA_DBK, _mm512_extractf32x4_ps(z, 3));
                    } else if (HG == 2) {
                        __m512 z = fa_dots(2, 8, kr, stride, qg, hdp, nfull, tail, kpf);
                        _mm256_storeu_ps(sg, _mm512_castps512_ps256(z));
                        _mm256_storeu_ps(sg + FA_DBK, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1)));
                    } else {
                        _mm512_storeu_ps(sg, fa_dots(1, 16, kr, stride, qg, hdp, nfull, tail, kpf));
                    }
                }
                g0 += HG;
            }
            /* online softmax per head, along keys */
            for (int g = 0; g < G; g++) {
                float* sg = sc + (size_t)g * FA_DBK;
                __m512 x[FA_DBK / 16], bm = neg;
                for (int c = 0; c < FA_DBK / 16; c++) {
                    int valid = bk - 16 * c;
                    __mmask16 vm = valid >= 16 ? (__mmask16)0xffff : valid <= 0 ? (__mmask16)0 : (__mmask16)((1u << valid) - 1);
                    x[c] = _mm512_mask_blend_ps(vm, neg, _mm512_loadu_ps(sg + 16 * c));
                    bm = _mm512_max_ps(bm, x[c]);
                }
                float mold = mh[g], bmax = _mm512_reduce_max_ps(bm), mnew = bmax > mold ? bmax : mold;
                __m512 mv = _mm512_set1_ps(mnew), sum = _mm512_setzero_ps();
                for (int c = 0; c < (bk + 15) / 16; c++) {
                    __m512 p = steer_exp2_avx512(_mm512_sub_ps(x[c], mv));
                    sum = _mm512_add_ps(sum, p);
                    _mm512_storeu_ps(sg + 16 * c, p);
                }
                float corr = 1.0f;
                if (mnew > mold) {
                    corr = _mm512_cvtss_f32(steer_exp2_avx512(_mm512_set1_ps(mold - mnew)));
                    __m512 cv = _mm512_set1_ps(corr);
                    float* og = oh + (size_t)g * hdp;
                    for (int c = 0; c < nch; c++) _mm512_store_ps(og + 16 * c, _mm512_mul_ps(_mm512_load_ps(og + 16 * c), cv));
                }
                lh[g] = lh[g] * corr + _mm512_reduce_add_ps(sum);
                mh[g] = mnew;
            }
            /* P·V */
            for (int g0 = 0; g0 < G; g0 += 4) {
                const int HG = STEER_MIN(4, G - g0);
                for (int c0 = 0; c0 < nch; c0 += 4) {
                    const int DC = STEER_MIN(4, nch - c0);
                    __mmask16 mk[4];
                    for (int c = 0; c < 4; c++) mk[c] = c0 + c < nfull ? (__mmask16)0xffff : tail;
                    float* og = oh + (size_t)g0 * hdp + 16 * c0;
                    const float* pg = sc + (size_t)g0 * FA_DBK;
                    const float* vc = vbase + 16 * c0;
                    switch (HG * 4 + DC - 5) {
#define FA_DPV(H, C) case H * 4 + C - 5: fa_dec_pv(H, C, og, hdp, pg, vc, kvdim, bk, mk, pf); break;
                    FA_DPV(1, 1) FA_DPV(1, 2) FA_DPV(1, 3) FA_DPV(1, 4) FA_DPV(2, 1) FA_DPV(2, 2) FA_DPV(2, 3) FA_DPV(2, 4)
                    FA_DPV(3, 1) FA_DPV(3, 2) FA_DPV(3, 3) FA_DPV(3, 4) FA_DPV(4, 1) FA_DPV(4, 2) FA_DPV(4, 3) FA_DPV(4, 4)
#undef FA_DPV
                    }
                }
            }
        }
    }
    if (partial) {
        for (int kvh = h0; kvh < h1; kvh++) {
            float* slot = partial + (size_t)kvh * G * (hd + 2);
            for (int g = 0; g < G; g++) {
                int h = (kvh - h0) * G + g;
                slot[g] = m[h];
                slot[G + g] = l[h];
                memcpy(slot + 2 * G + (size_t)g * hd, o + (size_t)h * hdp, sizeof(float) * (size_t)hd);
            }
        }
    } else {
        float* dst = j->out + (size_t)(seq->row + seq->n - 1) * qdim + (size_t)h0 * G * hd;
        for (int h = 0; h < H; h++) {
            __m512 inv = _mm512_set1_ps(1.0f / l[h]);
            for (int c = 0; c < nch; c++) {
                __mmask16 mk = c < nfull ? (__mmask16)0xffff : tail;
                _mm512_mask_storeu_ps(dst + (size_t)h * hd + 16 * c, mk, _mm512_mul_ps(_mm512_load_ps(o + (size_t)h * hdp + 16 * c), inv));
            }
        }
    }
}

/* ---- AVX2 path: the AVX-512 structure at 8 lanes, within 16 ymm registers ------------- */

/* Lane mask of the first n of 8 floats (n ≤ 0: none, n ≥ 8: all), for maskload / maskstore. */
STEER_TARGET_AVX2 STEER_INLINE __m256i fa2_first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* -- prefill: one tile of query vectors along lanes, in ymm columns taken in pairs -- */

/* Scores of R keys (rows of Sᵀ) against the tile's MZ·8 query lanes, and their running max
 * per lane, as fa_scores: R × MZ accumulators (6 × 2 or 12 × 1), MZ query rows and one
 * broadcast key element take 15 or 14 of the 16 ymm. */
STEER_TARGET_AVX2 STEER_INLINE void fa2_scores(const int R, const int MZ, const float* const* krow, const float* qt, int hd,
                                              int mp, float* st, __m256* bmax, const __m256i* pos, int key0, int nvalid,
                                              int masked) {
    __m256 acc[12][2];
    FA_UNROLL for (int r = 0; r < R; r++)
        FA_UNROLL for (int z = 0; z < MZ; z++) acc[r][z] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m256 qv[2];
        FA_UNROLL for (int z = 0; z < MZ; z++) qv[z] = _mm256_load_ps(qt + (size_t)d * mp + 8 * z);
        FA_UNROLL for (int r = 0; r < R; r++) {
            __m256 kv = _mm256_broadcast_ss(krow[r] + d);
            FA_UNROLL for (int z = 0; z < MZ; z++) acc[r][z] = _mm256_fmadd_ps(kv, qv[z], acc[r][z]);
        }
    }
    const __m256 neg = _mm256_set1_ps(FA_NEG);
    FA_UNROLL for (int r = 0; r < R; r++)
        FA_UNROLL for (int z = 0; z < MZ; z++) {
            __m256 s = acc[r][z];
            if (masked) { /* visible where the lane's position ≥ key0 + r */
                __m256i vis = r < nvalid ? _mm256_cmpgt_epi32(pos[z], _mm256_set1_epi32(key0 + r - 1)) : _mm256_setzero_si256();
                s = _mm256_blendv_ps(neg, s, _mm256_castsi256_ps(vis));
            }
            _mm256_store_ps(st + (size_t)r * mp + 8 * z, s);
            bmax[z] = _mm256_max_ps(bmax[z], s);
        }
}

/* Oᵀ rows d0 .. d0 + D (D × MZ ymm in registers, D ≤ 6) += Σ_j V[j][d] · Pᵀ[j] over the block's bk keys. */
STEER_TARGET_AVX2 STEER_INLINE void fa2_pv(const int D, const int MZ, float* ot, int mp, const float* st, const float* v,
                                          size_t kvdim, int bk) {
    __m256 acc[6][2];
    FA_UNROLL for (int dd = 0; dd < D; dd++)
        FA_UNROLL for (int z = 0; z < MZ; z++) acc[dd][z] = _mm256_load_ps(ot + (size_t)dd * mp + 8 * z);
    for (int jj = 0; jj < bk; jj++, v += kvdim) {
        __m256 p[2];
        FA_UNROLL for (int z = 0; z < MZ; z++) p[z] = _mm256_load_ps(st + (size_t)jj * mp + 8 * z);
        FA_UNROLL for (int dd = 0; dd < D; dd++) {
            __m256 vb = _mm256_broadcast_ss(v + dd);
            FA_UNROLL for (int z = 0; z < MZ; z++) acc[dd][z] = _mm256_fmadd_ps(vb, p[z], acc[dd][z]);
        }
    }
    FA_UNROLL for (int dd = 0; dd < D; dd++)
        FA_UNROLL for (int z = 0; z < MZ; z++) _mm256_store_ps(ot + (size_t)dd * mp + 8 * z, acc[dd][z]);
}

/* In-register transpose of an 8 × 8 block: r[i] lane c ↔ r[c] lane i. */
STEER_TARGET_AVX2 STEER_INLINE void fa2_transpose8(__m256* r) {
    __m256 t[8], u[8];
    FA_UNROLL for (int i = 0; i < 4; i++) { /* per 128-bit half: rows 2i, 2i+1 interleaved */
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    FA_UNROLL for (int k = 0; k < 2; k++) { /* u[4k + c]: column c (low half) and c + 4 (high) of rows 4k .. 4k + 3 */
        u[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
        u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xee);
        u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
        u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xee);
    }
    FA_UNROLL for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* Oᵀ rows d0 .. d0 + D of every column (nc ymm of 8 lanes) += the block's V · Pᵀ: column pairs,
 * then the odd column. */
STEER_TARGET_AVX2 STEER_INLINE void fa2_pv_columns(const int D, int nc, float* ot, int mp, const float* st, const float* v,
                                                  size_t kvdim, int bk) {
    int c = 0;
    for (; c + 2 <= nc; c += 2) fa2_pv(D, 2, ot + 8 * c, mp, st + 8 * c, v, kvdim, bk);
    if (c < nc) fa2_pv(D, 1, ot + 8 * c, mp, st + 8 * c, v, kvdim, bk);
}

/* The AVX2 counterpart of fa_tile: up to 64 query lanes in nc ymm columns, processed in pairs
 * (6-key × 2-ymm score tiles, 6-dim × 2-ymm P·V tiles) and, for an odd nc, a last single
 * column (12-key and 6-dim tiles). All columns share each K/V block, so a block comes from
 * L3 once per tile and is re-read from L1/L2 for the other columns. */
STEER_TARGET_AVX2 static void fa2_tile(const fa_job* j, const steer_attn_seq* seq, int kvh, int t0, int t1, float* scratch) {
    const int hd = j->hd, G = j->group, M = (t1 - t0) * G, nc = (M + 7) / 8, mp = 8 * nc;
    const size_t qdim = (size_t)j->nh * hd, kvdim = (size_t)j->nkv * hd;
    float* qt = scratch;                            /* (hd, mp) scaled queries */
    float* ot = qt + (size_t)hd * mp;               /* (hd, mp) running Σ p·v */
    float* st = ot + (size_t)hd * mp;               /* (FA_BK, mp) scores, then probabilities */
    int32_t* posb = (int32_t*)(st + (size_t)FA_BK * mp); /* (mp) position of each lane's token */
    const __m256i dtail = fa2_first(hd % 8);
    /* Qᵀ: 8 lanes × 8 dims at a time through an in-register transpose */
    const __m256 qscale = _mm256_set1_ps(j->qscale);
    for (int z = 0; z < nc; z++) {
        const float* src[8];
        FA_UNROLL for (int i = 0; i < 8; i++) {
            int lane = 8 * z + i, t = lane / G, g = lane % G;
            src[i] = lane < M ? j->q + (size_t)(seq->row + t0 + t) * qdim + (size_t)(kvh * G + g) * hd : NULL;
            posb[lane] = lane < M ? seq->start + t0 + t : INT32_MAX; /* padding lanes see every key */
        }
        for (int d0 = 0; d0 < hd; d0 += 8) {
            const int full = hd - d0 >= 8;
            __m256 r[8];
            FA_UNROLL for (int i = 0; i < 8; i++) {
                __m256 x = !src[i] ? _mm256_setzero_ps() : full ? _mm256_loadu_ps(src[i] + d0) : _mm256_maskload_ps(src[i] + d0, dtail);
                r[i] = _mm256_mul_ps(x, qscale);
            }
            fa2_transpose8(r);
            FA_UNROLL for (int i = 0; i < 8; i++)
                if (d0 + i < hd) _mm256_store_ps(qt + (size_t)(d0 + i) * mp + 8 * z, r[i]);
        }
    }
    memset(ot, 0, sizeof(float) * (size_t)hd * mp);
    const __m256 zero = _mm256_setzero_ps();
    __m256i pos[8];
    __m256 m[8], l[8], bmax[8];
    for (int z = 0; z < nc; z++) {
        pos[z] = _mm256_load_si256((const __m256i*)(posb + 8 * z));
        m[z] = l[z] = zero;
    }
    const int keys = seq->start + t1, minpos = seq->start + t0;
    const float* kbase = seq->k + (size_t)kvh * hd;
    const float* vbase = seq->v + (size_t)kvh * hd;
    for (int kb = 0; kb < keys; kb += FA_BK) {
        const int bk = STEER_MIN(FA_BK, keys - kb), first = kb == 0;
        for (int z = 0; z < nc; z++) bmax[z] = _mm256_set1_ps(FA_NEG);
        /* 12 keys at a time (two 6-key tiles per pair, one 12-key tile for a single column),
         * so the keys' rows stay in L1 across the columns */
        for (int j0 = 0; j0 < bk; j0 += 12) {
            const int nvalid = STEER_MIN(12, bk - j0);
            const float* krow[12];
            for (int r = 0; r < 12; r++) krow[r] = r < nvalid ? kbase + (size_t)(kb + j0 + r) * kvdim : fa_zeros;
            const int masked = nvalid < 12 || kb + j0 + 11 > minpos;
            float* sj = st + (size_t)j0 * mp;
            int z = 0;
            for (; z + 2 <= nc; z += 2) {
                fa2_scores(6, 2, krow, qt + 8 * z, hd, mp, sj + 8 * z, bmax + z, pos + z, kb + j0, nvalid, masked);
                fa2_scores(6, 2, krow + 6, qt + 8 * z, hd, mp, sj + 6 * mp + 8 * z, bmax + z, pos + z, kb + j0 + 6, nvalid - 6, masked);
            }
            if (z < nc) fa2_scores(12, 1, krow, qt + 8 * z, hd, mp, sj + 8 * z, bmax + z, pos + z, kb + j0, nvalid, masked);
        }
        /* online softmax, as in fa_tile */
        if (first) {
            for (int z = 0; z < nc; z++) m[z] = bmax[z];
        } else {
            int grew = 0;
            for (int z = 0; z < nc; z++) grew |= _mm256_movemask_ps(_mm256_cmp_ps(bmax[z], m[z], _CMP_GT_OQ));
            if (grew) {
                __m256 corr[8];
                for (int z = 0; z < nc; z++) {
                    __m256 mnew = _mm256_max_ps(m[z], bmax[z]);
                    corr[z] = steer_exp2_avx2(_mm256_sub_ps(m[z], mnew));
                    m[z] = mnew;
                    l[z] = _mm256_mul_ps(l[z], corr[z]);
                }
                for (int d = 0; d < hd; d++)
                    for (int z = 0; z < nc; z++) {
                        float* o = ot + (size_t)d * mp + 8 * z;
                        _mm256_store_ps(o, _mm256_mul_ps(_mm256_load_ps(o), corr[z]));
                    }
            }
        }
        for (int jj = 0; jj < bk; jj++)
            for (int z = 0; z < nc; z++) {
                float* s = st + (size_t)jj * mp + 8 * z;
                __m256 p = steer_exp2_avx2(_mm256_sub_ps(_mm256_load_ps(s), m[z]));
                l[z] = _mm256_add_ps(l[z], p);
                _mm256_store_ps(s, p);
            }
        /* P·V: 6 dims at a time, then the hd % 6 left */
        const float* vb = vbase + (size_t)kb * kvdim;
        int d0 = 0;
        for (; d0 + 6 <= hd; d0 += 6) fa2_pv_columns(6, nc, ot + (size_t)d0 * mp, mp, st, vb + d0, kvdim, bk);
        switch (hd - d0) {
#define FA2_PV_CASE(DD) case DD: fa2_pv_columns(DD, nc, ot + (size_t)d0 * mp, mp, st, vb + d0, kvdim, bk); break;
        FA2_PV_CASE(5) FA2_PV_CASE(4) FA2_PV_CASE(3) FA2_PV_CASE(2) FA2_PV_CASE(1)
#undef FA2_PV_CASE
        }
    }
    /* out = Oᵀ / l, transposed back 8 lanes × 8 dims at a time */
    for (int z = 0; z < nc; z++) {
        const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), l[z]);
        for (int d0 = 0; d0 < hd; d0 += 8) {
            const int full = hd - d0 >= 8;
            __m256 r[8];
            FA_UNROLL for (int i = 0; i < 8; i++)
                r[i] = d0 + i < hd ? _mm256_mul_ps(_mm256_load_ps(ot + (size_t)(d0 + i) * mp + 8 * z), inv) : zero;
            fa2_transpose8(r);
            FA_UNROLL for (int i = 0; i < 8; i++) {
                int lane = 8 * z + i, t = lane / G, g = lane % G;
                if (lane >= M) break;
                float* dst = j->out + (size_t)(seq->row + t0 + t) * qdim + (size_t)(kvh * G + g) * hd + d0;
                if (full) _mm256_storeu_ps(dst, r[i]);
                else _mm256_maskstore_ps(dst, dtail, r[i]);
            }
        }
    }
}

/* -- decode: one token, scores vectorized over hd -- */

/* Horizontal sums of 8 vectors: lane i of the result is Σ v[i]. */
STEER_TARGET_AVX2 STEER_INLINE __m256 fa2_reduce8(const __m256* v) {
    __m256 a[4], b[2];
    FA_UNROLL for (int i = 0; i < 4; i++) /* per 128-bit half: v2i, v2i+1, v2i, v2i+1 */
        a[i] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    FA_UNROLL for (int i = 0; i < 2; i++) { /* per 128-bit half: v4i .. v4i+3 */
        __m256d x = _mm256_castps_pd(a[2 * i]), y = _mm256_castps_pd(a[2 * i + 1]);
        b[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)), _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(b[0], b[1], 0x20), _mm256_permute2f128_ps(b[0], b[1], 0x31));
}

STEER_TARGET_AVX2 STEER_INLINE float fa2_hmax(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
}

STEER_TARGET_AVX2 STEER_INLINE float fa2_hsum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_shuffle_ps(x, x, 1)));
}

/* Dot products of HG query heads with KG keys (HG · KG = 8): lane h·KG + i is q_h · k_i, as
 * fa_dots: 8 accumulators, HG query chunks and one key chunk take at most 13 ymm. Keys are
 * rows krow + i·stride; qs rows are zero-padded to hdp, so only the key tail (nfull < hdp / 8)
 * is loaded under `tail`. */
STEER_TARGET_AVX2 STEER_INLINE __m256 fa2_dots(const int HG, const int KG, const float* krow, size_t stride, const float* qs,
                                              int hdp, int nfull, __m256i tail, size_t pf) {
    __m256 acc[8];
    FA_UNROLL for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
    for (int c = 0; c < nfull; c++) {
        __m256 qv[4];
        FA_UNROLL for (int h = 0; h < HG; h++) qv[h] = _mm256_load_ps(qs + (size_t)h * hdp + 8 * c);
        FA_UNROLL for (int i = 0; i < KG; i++) {
            _mm_prefetch((const char*)(krow + i * stride + 8 * c + pf), FA_PF_HINT);
            __m256 kv = _mm256_loadu_ps(krow + i * stride + 8 * c);
            FA_UNROLL for (int h = 0; h < HG; h++) acc[h * KG + i] = _mm256_fmadd_ps(qv[h], kv, acc[h * KG + i]);
        }
    }
    if (8 * nfull < hdp) {
        __m256 qv[4];
        FA_UNROLL for (int h = 0; h < HG; h++) qv[h] = _mm256_load_ps(qs + (size_t)h * hdp + 8 * nfull);
        FA_UNROLL for (int i = 0; i < KG; i++) {
            _mm_prefetch((const char*)(krow + i * stride + 8 * nfull + pf), FA_PF_HINT);
            __m256 kv = _mm256_maskload_ps(krow + i * stride + 8 * nfull, tail);
            FA_UNROLL for (int h = 0; h < HG; h++) acc[h * KG + i] = _mm256_fmadd_ps(qv[h], kv, acc[h * KG + i]);
        }
    }
    return fa2_reduce8(acc);
}

/* o rows (HG heads, DC chunks of 8 dims in registers) += Σ_j p_h[j] · V[j] over bk keys;
 * `masked`: the one chunk (DC = 1) is hd's tail, loaded under `tail`. */
STEER_TARGET_AVX2 STEER_INLINE void fa2_dec_pv(const int HG, const int DC, const int masked, float* o, int hdp, const float* p,
                                              const float* v, size_t kvdim, int bk, __m256i tail, size_t pf) {
    __m256 acc[4][2];
    FA_UNROLL for (int h = 0; h < HG; h++)
        FA_UNROLL for (int c = 0; c < DC; c++) acc[h][c] = _mm256_load_ps(o + (size_t)h * hdp + 8 * c);
    for (int jj = 0; jj < bk; jj++, v += kvdim) {
        __m256 vv[2];
        FA_UNROLL for (int c = 0; c < DC; c++) {
            _mm_prefetch((const char*)(v + 8 * c + pf), FA_PF_HINT);
            vv[c] = masked ? _mm256_maskload_ps(v + 8 * c, tail) : _mm256_loadu_ps(v + 8 * c);
        }
        FA_UNROLL for (int h = 0; h < HG; h++) {
            __m256 pb = _mm256_broadcast_ss(p + (size_t)h * FA_DBK + jj);
            FA_UNROLL for (int c = 0; c < DC; c++) acc[h][c] = _mm256_fmadd_ps(pb, vv[c], acc[h][c]);
        }
    }
    FA_UNROLL for (int h = 0; h < HG; h++)
        FA_UNROLL for (int c = 0; c < DC; c++) _mm256_store_ps(o + (size_t)h * hdp + 8 * c, acc[h][c]);
}

/* The token of a decode sequence against keys [k0, k1) for KV heads [h0, h1), as fa_decode:
 * scores 8 at a time (4 heads × 2 keys, 2 × 4 or 1 × 8), P·V over ≤ 4 heads × 2 chunks of 8
 * dims, then one masked pass for hd % 8. */
STEER_TARGET_AVX2 static void fa2_decode(const fa_job* j, const steer_attn_seq* seq, int h0, int h1, int k0, int k1,
                                        float* partial, float* scratch) {
    const int hd = j->hd, G = j->group, hdp = (hd + 7) / 8 * 8, nch = hdp / 8, nfull = hd / 8;
    const __m256i tail = fa2_first(hd % 8);
    const size_t qdim = (size_t)j->nh * hd, kvdim = (size_t)j->nkv * hd;
    const int H = (h1 - h0) * G, keys = seq->start + seq->n;
    float* qs = scratch;                     /* (H, hdp) scaled queries, zero-padded */
    float* o = qs + (size_t)H * hdp;         /* (H, hdp) running Σ p·v */
    float* sc = o + (size_t)H * hdp;         /* (G, FA_DBK) scores, then probabilities, of one block */
    float* ktail = sc + (size_t)G * FA_DBK;  /* (8, hdp) zero-padded copy of the cache's last keys */
    float* m = ktail + 8 * (size_t)hdp;      /* (H) running max */
    float* l = m + H;                        /* (H) running sum */
    const float* qrow = j->q + (size_t)(seq->row + seq->n - 1) * qdim + (size_t)h0 * G * hd;
    const __m256 qscale = _mm256_set1_ps(j->qscale);
    for (int h = 0; h < H; h++) {
        for (int c = 0; c < nch; c++) {
            const float* src = qrow + (size_t)h * hd + 8 * c;
            __m256 x = c < nfull ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, tail);
            _mm256_store_ps(qs + (size_t)h * hdp + 8 * c, _mm256_mul_ps(x, qscale));
            _mm256_store_ps(o + (size_t)h * hdp + 8 * c, _mm256_setzero_ps());
        }
        m[h] = FA_NEG;
        l[h] = 0;
    }
    const __m256 neg = _mm256_set1_ps(FA_NEG);
    for (int kb = k0; kb < k1; kb += FA_DBK) {
        const int bk = STEER_MIN(FA_DBK, k1 - kb);
        /* each row read also prefetches the row FA_PF_ROWS ahead (0: itself, at the range's end) */
        const size_t pf = kb + FA_DBK + FA_PF_ROWS <= k1 ? (size_t)FA_PF_ROWS * kvdim : 0;
        for (int kvh = h0; kvh < h1; kvh++) {
            const float* kbase = seq->k + (size_t)kb * kvdim + (size_t)kvh * hd;
            const float* vbase = seq->v + (size_t)kb * kvdim + (size_t)kvh * hd;
            const float* qh = qs + (size_t)(kvh - h0) * G * hdp;
            float* oh = o + (size_t)(kvh - h0) * G * hdp;
            float* mh = m + (kvh - h0) * G;
            float* lh = l + (kvh - h0) * G;
            /* scores: sc[g][jj] = q_g · k_jj, in log2 units */
            for (int g0 = 0; g0 < G;) {
                const int HG = G - g0 >= 4 ? 4 : G - g0 >= 2 ? 2 : 1, KG = 8 / HG;
                for (int j0 = 0; j0 < bk; j0 += KG) {
                    const float* kr = kbase + (size_t)j0 * kvdim;
                    size_t stride = kvdim, kpf = pf;
                    if (kb + j0 + KG > keys) { /* would read past the cache: copy the last rows */
                        kr = fa_key_tail(kr, kvdim, keys - kb - j0, KG, hd, hdp, ktail);
                        stride = (size_t)hdp;
                        kpf = 0;
                    }
                    const float* qg = qh + (size_t)g0 * hdp;
                    float* sg = sc + (size_t)g0 * FA_DBK + j0;
                    if (HG == 4) { /* lanes: (head 0: 2 keys, head 1 | head 2, head 3) */
                        __m256 z = fa2_dots(4, 2, kr, stride, qg, hdp, nfull, tail, kpf);
                        __m128 lo = _mm256_castps256_ps128(z), hi = _mm256_extractf128_ps(z, 1);
                        _mm_storel_pi((__m64*)sg, lo);
                        _mm_storeh_pi((__m64*)(sg + FA_DBK), lo);
                        _mm_storel_pi((__m64*)(sg + 2 * FA_DBK), hi);
                        _mm_storeh_pi((__m64*)(sg + 3 * FA_DBK), hi);
                    } else if (HG == 2) {
                        __m256 z = fa2_dots(2, 4, kr, stride, qg, hdp, nfull, tail, kpf);
                        _mm_storeu_ps(sg, _mm256_castps256_ps128(z));
                        _mm_storeu_ps(sg + FA_DBK, _mm256_extractf128_ps(z, 1));
                    } else {
                        _mm256_storeu_ps(sg, fa2_dots(1, 8, kr, stride, qg, hdp, nfull, tail, kpf));
                    }
                }
                g0 += HG;
            }
            /* online softmax per head, along keys */
            for (int g = 0; g < G; g++) {
                float* sg = sc + (size_t)g * FA_DBK;
                __m256 x[FA_DBK / 8], bm = neg;
                for (int c = 0; c < FA_DBK / 8; c++) {
                    x[c] = _mm256_blendv_ps(neg, _mm256_loadu_ps(sg + 8 * c), _mm256_castsi256_ps(fa2_first(bk - 8 * c)));
                    bm = _mm256_max_ps(bm, x[c]);
                }
                float mold = mh[g], bmax = fa2_hmax(bm), mnew = bmax > mold ? bmax : mold;
                __m256 mv = _mm256_set1_ps(mnew), sum = _mm256_setzero_ps();
                for (int c = 0; c < (bk + 7) / 8; c++) {
                    __m256 p = steer_exp2_avx2(_mm256_sub_ps(x[c], mv));
                    sum = _mm256_add_ps(sum, p);
                    _mm256_storeu_ps(sg + 8 * c, p);
                }
                float corr = 1.0f;
                if (mnew > mold) {
                    corr = _mm256_cvtss_f32(steer_exp2_avx2(_mm256_set1_ps(mold - mnew)));
                    __m256 cv = _mm256_set1_ps(corr);
                    float* og = oh + (size_t)g * hdp;
                    for (int c = 0; c < nch; c++) _mm256_store_ps(og + 8 * c, _mm256_mul_ps(_mm256_load_ps(og + 8 * c), cv));
                }
                lh[g] = lh[g] * corr + fa2_hsum(sum);
                mh[g] = mnew;
            }
            /* P·V */
            for (int g0 = 0; g0 < G; g0 += 4) {
                const int HG = STEER_MIN(4, G - g0);
                float* og = oh + (size_t)g0 * hdp;
                const float* pg = sc + (size_t)g0 * FA_DBK;
                for (int c0 = 0; c0 < nfull; c0 += 2) {
                    const int DC = STEER_MIN(2, nfull - c0);
                    switch ((HG - 1) * 2 + DC - 1) {
#define FA2_DPV(H, C) case (H - 1) * 2 + C - 1: fa2_dec_pv(H, C, 0, og + 8 * c0, hdp, pg, vbase + 8 * c0, kvdim, bk, tail, pf); break;
                    FA2_DPV(1, 1) FA2_DPV(1, 2) FA2_DPV(2, 1) FA2_DPV(2, 2) FA2_DPV(3, 1) FA2_DPV(3, 2) FA2_DPV(4, 1) FA2_DPV(4, 2)
#undef FA2_DPV
                    }
                }
                if (nfull < nch) {
                    switch (HG) {
#define FA2_DPV_TAIL(H) case H: fa2_dec_pv(H, 1, 1, og + 8 * nfull, hdp, pg, vbase + 8 * nfull, kvdim, bk, tail, pf); break;
                    FA2_DPV_TAIL(1) FA2_DPV_TAIL(2) FA2_DPV_TAIL(3) FA2_DPV_TAIL(4)
#undef FA2_DPV_TAIL
                    }
                }
            }
        }
    }
    if (partial) {
        for (int kvh = h0; kvh < h1; kvh++) {
            float* slot = partial + (size_t)kvh * G * (hd + 2);
            for (int g = 0; g < G; g++) {
                int h = (kvh - h0) * G + g;
                slot[g] = m[h];
                slot[G + g] = l[h];
                memcpy(slot + 2 * G + (size_t)g * hd, o + (size_t)h * hdp, sizeof(float) * (size_t)hd);
            }
        }
    } else {
        float* dst = j->out + (size_t)(seq->row + seq->n - 1) * qdim + (size_t)h0 * G * hd;
        for (int h = 0; h < H; h++) {
            __m256 inv = _mm256_set1_ps(1.0f / l[h]);
            for (int c = 0; c < nch; c++) {
                __m256 y = _mm256_mul_ps(_mm256_load_ps(o + (size_t)h * hdp + 8 * c), inv);
                if (c < nfull) _mm256_storeu_ps(dst + (size_t)h * hd + 8 * c, y);
                else _mm256_maskstore_ps(dst + (size_t)h * hd + 8 * c, tail, y);
            }
        }
    }
}

/* ---- task plan, shared by the AVX-512F and AVX2 paths ---------------------------------- */

static void fa_task_body(void* ctx, int task, int thread) {
    const fa_job* j = (const fa_job*)ctx;
    int s = seq_of_task(j->first_task, j->nseq, task);
    const steer_attn_seq* seq = &j->seqs[s];
    int local = task - j->first_task[s];
    if (seq->n > 1) {
        int tiles = (seq->n + j->tq - 1) / j->tq;
        int kvh = local / tiles, tile = tiles - 1 - local % tiles; /* costliest (last) tiles first */
        int t0 = tile * j->tq, t1 = STEER_MIN(seq->n, t0 + j->tq);
        float* sc = (float*)steer_thread_scratch(thread, j->tile_scratch);
        if (j->wide) {
            switch (((t1 - t0) * j->group + 15) / 16) {
            case 1: fa_tile1(j, seq, kvh, t0, t1, sc); break;
            case 2: fa_tile2(j, seq, kvh, t0, t1, sc); break;
            case 3: fa_tile3(j, seq, kvh, t0, t1, sc); break;
            default: fa_tile4(j, seq, kvh, t0, t1, sc); break;
            }
        } else {
            fa2_tile(j, seq, kvh, t0, t1, sc);
        }
    } else {
        int chunks = j->chunks[s], part = local / chunks, c = local % chunks;
        int h0 = part * j->nkv / j->hparts, h1 = (part + 1) * j->nkv / j->hparts;
        int keys = seq->start + seq->n, k0 = c * j->chunk_keys[s], k1 = STEER_MIN(keys, k0 + j->chunk_keys[s]);
        float* partial = chunks > 1 ? j->partial + (size_t)(j->first_slot[s] + c) * j->nkv * j->group * (j->hd + 2) : NULL;
        float* sc = (float*)steer_thread_scratch(thread, j->decode_scratch);
        if (j->wide) fa_decode(j, seq, h0, h1, k0, k1, partial, sc);
        else fa2_decode(j, seq, h0, h1, k0, k1, partial, sc);
    }
}

/* Denormals flushed: see steer_denormals_flush (the exps of a softmax over large scores). */
static void fa_task(void* ctx, int task, int thread) {
    unsigned int csr = steer_denormals_flush();
    fa_task_body(ctx, task, thread);
    steer_denormals_restore(csr);
}

/* Combines the key ranges of split decode sequences: out = Σ 2^(m_c − M) o_c / Σ 2^(m_c − M) l_c. */
static void fa_merge(const fa_job* j) {
    const int G = j->group, hd = j->hd, slot = G * (hd + 2);
    for (int s = 0; s < j->nseq; s++) {
        const steer_attn_seq* seq = &j->seqs[s];
        int chunks = seq->n == 1 ? j->chunks[s] : 1;
        if (chunks <= 1) continue;
        const float* base = j->partial + (size_t)j->first_slot[s] * j->nkv * slot;
        for (int kvh = 0; kvh < j->nkv; kvh++)
            for (int g = 0; g < G; g++) {
                float mx = FA_NEG;
                for (int c = 0; c < chunks; c++) {
                    float mc = base[((size_t)c * j->nkv + kvh) * slot + g];
                    mx = mc > mx ? mc : mx;
                }
                float* dst = j->out + (size_t)seq->row * j->nh * hd + (size_t)(kvh * G + g) * hd;
                float lsum = 0;
                for (int d = 0; d < hd; d++) dst[d] = 0;
                for (int c = 0; c < chunks; c++) {
                    const float* p = base + ((size_t)c * j->nkv + kvh) * slot;
                    float wc = exp2f(p[g] - mx);
                    lsum += wc * p[G + g];
                    const float* oc = p + 2 * G + (size_t)g * hd;
                    for (int d = 0; d < hd; d++) dst[d] += wc * oc[d];
                }
                float inv = 1.0f / lsum;
                for (int d = 0; d < hd; d++) dst[d] *= inv;
            }
    }
}

/* Key ranges of a decode cache of `keys` keys split about `want` ways: each a multiple of
 * FA_DBK keys (*per) and at least FA_SPLIT_MIN, none empty. Returns their count. */
static int fa_key_ranges(int keys, int want, int* per) {
    int c = STEER_MAX(1, STEER_MIN(want, keys / FA_SPLIT_MIN));
    int p = (keys + c - 1) / c;
    p = (p + FA_DBK - 1) / FA_DBK * FA_DBK;
    *per = p;
    return (keys + p - 1) / p;
}

/* wide: the AVX-512F kernels, else the AVX2 ones. */
static void attention_x86(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd, int wide) {
    fa_job j;
    memset(&j, 0, sizeof j);
    j.q = q;
    j.out = out;
    j.seqs = seqs;
    j.nseq = nseq;
    j.nh = nh;
    j.nkv = nkv;
    j.hd = hd;
    j.group = nh / nkv;
    j.wide = wide;
    j.tq = STEER_MAX(1, MAX_M / j.group);
    j.qscale = 1.44269504088896341f / sqrtf((float)hd);
    /* Decode tasks: a whole sequence (all KV heads, contiguous rows) when there are enough of
     * them, else one per KV head, and then, with fewer than 8 tasks per thread (small enough to
     * even out a core slowed by other work), key ranges. On AVX2, key ranges over all KV heads
     * are preferred whenever they alone make 8 tasks per thread: they read whole rows, where a
     * KV head reads a 1/nkv strip of each (one 32k-key sequence: 10.7 against 5.8 GB/s on the
     * 2-core Zen 3). */
    int threads = steer_pool_threads(), prefill = 0, decode = 0, ranges = 0;
    for (int s = 0; s < nseq; s++) {
        if (seqs[s].n > 1) prefill += nkv * ((seqs[s].n + j.tq - 1) / j.tq);
        else if (seqs[s].n == 1) {
            decode++;
            ranges += STEER_MAX(1, (seqs[s].start + 1) / FA_SPLIT_MIN);
        }
    }
    j.hparts = prefill + decode >= 4 * threads || (!wide && prefill + ranges >= 8 * threads) ? 1 : nkv;
    int base = prefill + decode * j.hparts;
    int want = base < 8 * threads && decode > 0 ? (8 * threads + base - 1) / base : 1;
    int slots = 0;
    for (int s = 0; s < nseq; s++) {
        int per, c = seqs[s].n == 1 ? fa_key_ranges(seqs[s].start + 1, want, &per) : 1;
        if (c > 1) slots += c;
    }
    /* call scratch: first_task, chunks, chunk_keys, first_slot, then the partials */
    size_t head = ((size_t)(4 * nseq + 1) * sizeof(int32_t) + 63) / 64 * 64;
    size_t floats = (size_t)slots * nkv * j.group * (hd + 2);
    int32_t* first = (int32_t*)steer_call_scratch(head + floats * sizeof(float));
    int32_t *chunks = first + nseq + 1, *chunk_keys = chunks + nseq, *first_slot = chunk_keys + nseq;
    j.partial = slots > 0 ? (float*)((char*)first + head) : NULL;
    slots = 0;
    first[0] = 0;
    for (int s = 0; s < nseq; s++) {
        const steer_attn_seq* seq = &seqs[s];
        chunks[s] = 1;
        chunk_keys[s] = 0;
        first_slot[s] = -1;
        if (seq->n > 1) first[s + 1] = first[s] + nkv * ((seq->n + j.tq - 1) / j.tq);
        else if (seq->n <= 0) first[s + 1] = first[s];
        else {
            chunks[s] = fa_key_ranges(seq->start + 1, want, &chunk_keys[s]);
            if (chunks[s] > 1) {
                first_slot[s] = slots;
                slots += chunks[s];
            }
            first[s + 1] = first[s] + j.hparts * chunks[s];
        }
    }
    j.first_task = first;
    j.chunks = chunks;
    j.chunk_keys = chunk_keys;
    j.first_slot = first_slot;
    j.tile_scratch = sizeof(float) * fa_tile_floats(hd);
    j.decode_scratch = sizeof(float) * fa_decode_floats((nkv + j.hparts - 1) / j.hparts * j.group, j.group, hd, wide ? 16 : 8);
    steer_parallel_for(first[nseq], fa_task, &j);
    if (slots > 0) fa_merge(&j);
}

#endif /* STEER_HAVE_X86 */

void steer_attention(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd) {
    if (nseq <= 0 || hd <= 0 || hd > MAX_HD || nkv <= 0 || nh % nkv != 0 || nh / nkv > MAX_M) return;
#ifdef STEER_HAVE_X86
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512 || isa == STEER_ISA_AVX2) {
        attention_x86(q, out, seqs, nseq, nh, nkv, hd, isa >= STEER_ISA_AVX512);
        return;
    }
#endif
    attention_generic(q, out, seqs, nseq, nh, nkv, hd);
}

void steer_ref_attention(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd) {
    int qdim = nh * hd, kvdim = nkv * hd, group = nh / nkv;
    float scale = 1.0f / sqrtf((float)hd);
    for (int s = 0; s < nseq; s++) {
        const steer_attn_seq* seq = &seqs[s];
        int len = seq->start + seq->n;
        float* scores = (float*)steer_aligned_alloc(sizeof(float) * (size_t)len);
        for (int i = 0; i < seq->n; i++)
            for (int h = 0; h < nh; h++) {
                int visible = seq->start + i + 1, kvo = (h / group) * hd;
                const float* qi = q + (size_t)(seq->row + i) * qdim + (size_t)h * hd;
                float max = -INFINITY;
                for (int t = 0; t < visible; t++) {
                    const float* kt = seq->k + (size_t)t * kvdim + kvo;
                    float dot = 0;
                    for (int d = 0; d < hd; d++) dot += qi[d] * kt[d];
                    scores[t] = dot * scale;
                    if (scores[t] > max) max = scores[t];
                }
                double sum = 0;
                for (int t = 0; t < visible; t++) { scores[t] = expf(scores[t] - max); sum += scores[t]; }
                float inv = (float)(1.0 / sum);
                float* oi = out + (size_t)(seq->row + i) * qdim + (size_t)h * hd;
                for (int d = 0; d < hd; d++) oi[d] = 0;
                for (int t = 0; t < visible; t++) {
                    float p = scores[t] * inv;
                    const float* vt = seq->v + (size_t)t * kvdim + kvo;
                    for (int d = 0; d < hd; d++) oi[d] += p * vt[d];
                }
            }
        steer_aligned_free(scores);
    }
}
