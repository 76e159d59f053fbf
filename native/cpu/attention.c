/* Causal grouped-query attention over a batch of sequences, each with its own f32 KV cache.
 *
 * A task is (sequence, KV head, tile of up to BQ new tokens): the tile's queries of every head
 * in the KV head's group (M = tokens × group vectors) share each K/V block read. Keys go in
 * blocks of BK with an online softmax (running max and sum per query), so a long prompt never
 * materializes its (n, len) score matrix. A K block is transposed to (hd, BK) so scores
 * vectorize over keys; P·V vectorizes over hd. Decode is the same with one token per tile. */
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

STEER_INLINE void attend_tile(const attn_job* j, const steer_attn_seq* seq, int kvh, int t0, int t1, attn_scratch* sc) {
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

STEER_TARGET_AVX512 static void tile_avx512(const attn_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, attn_scratch* sc) {
    attend_tile(j, s, kvh, t0, t1, sc);
}
STEER_TARGET_AVX2 static void tile_avx2(const attn_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, attn_scratch* sc) {
    attend_tile(j, s, kvh, t0, t1, sc);
}
static void tile_portable(const attn_job* j, const steer_attn_seq* s, int kvh, int t0, int t1, attn_scratch* sc) {
    attend_tile(j, s, kvh, t0, t1, sc);
}

static void attn_task(void* ctx, int task, int thread) {
    const attn_job* j = (const attn_job*)ctx;
    int lo = 0, hi = j->nseq - 1; /* the sequence whose task range holds `task` */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (j->first_task[mid] <= task) lo = mid; else hi = mid - 1;
    }
    const steer_attn_seq* seq = &j->seqs[lo];
    int local = task - j->first_task[lo];
    int tiles = (seq->n + j->bq - 1) / j->bq;
    int kvh = local / tiles, tile = tiles - 1 - local % tiles; /* costliest (last) tiles first */
    int t0 = tile * j->bq, t1 = STEER_MIN(seq->n, t0 + j->bq);
    attn_scratch* sc = (attn_scratch*)steer_thread_scratch(thread, sizeof(attn_scratch));
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512) tile_avx512(j, seq, kvh, t0, t1, sc);
    else if (isa == STEER_ISA_AVX2) tile_avx2(j, seq, kvh, t0, t1, sc);
    else tile_portable(j, seq, kvh, t0, t1, sc);
}

void steer_attention(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd) {
    if (nseq <= 0 || hd > MAX_HD || nkv <= 0 || nh % nkv != 0) return;
    attn_job j = {q, out, seqs, NULL, nseq, nh, nkv, hd, nh / nkv, 0};
    j.bq = STEER_MAX(1, MAX_M / j.group);
    if (j.group > MAX_M) return;
    int32_t* first = (int32_t*)steer_call_scratch(sizeof(int32_t) * (size_t)(nseq + 1));
    first[0] = 0;
    for (int s = 0; s < nseq; s++) first[s + 1] = first[s] + nkv * ((seqs[s].n + j.bq - 1) / j.bq);
    j.first_task = first;
    steer_parallel_for(first[nseq], attn_task, &j);
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
