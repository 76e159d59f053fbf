/* The block's residual add fused with per-row steering: x ← x + delta, then each row's own
 * list of steering terms. One pass over x instead of one per steering term. The multiply and
 * add are not fused, and sums accumulate in double in index order, so the result is
 * bit-identical to the C# reference (TensorPrimitives.Add, then SteeringOps.Apply). */
#include "internal.h"

STEER_INLINE double sum_products(const float* a, const float* b, int h) {
    double s = 0;
    for (int i = 0; i < h; i++) s += (double)a[i] * b[i];
    return s;
}

/* One term on one row x (h). add: x += m·v. add_normalized: the add, then x scaled back to its
 * norm before. ablate, cap, set: the projection p = x·v/|v| clamped to [lo, hi],
 * x += ((clamp(p) − p)/|v|)·v. */
STEER_INLINE void apply_term(float* STEER_RESTRICT x, const float* STEER_RESTRICT v, const steer_add* a, int h) {
    if (a->op == STEER_OP_ADD) {
        float mult = a->multiplier;
        for (int i = 0; i < h; i++) x[i] = v[i] * mult + x[i];
    } else if (a->op == STEER_OP_ADD_NORMALIZED) {
        float mult = a->multiplier;
        double before = sum_products(x, x, h);
        for (int i = 0; i < h; i++) x[i] = v[i] * mult + x[i];
        double after = sum_products(x, x, h);
        if (after > 0) {
            float scale = (float)sqrt(before / after);
            for (int i = 0; i < h; i++) x[i] = x[i] * scale;
        }
    } else {
        double norm = sqrt(sum_products(v, v, h)), p = sum_products(x, v, h) / norm;
        double clamped = p < a->lo ? a->lo : (p > a->hi ? a->hi : p);
        float step = (float)((clamped - p) / norm);
        for (int i = 0; i < h; i++) x[i] = v[i] * step + x[i];
    }
}

typedef struct residual_job {
    float* x;
    const float* delta;
    const int32_t* row_adds;
    const steer_add* adds;
    const float* const* vectors;
    int rows, h, rows_per_task;
} residual_job;

STEER_INLINE void residual_rows(const residual_job* j, int r0, int r1) {
    int h = j->h;
    for (int r = r0; r < r1; r++) {
        float* STEER_RESTRICT x = j->x + (size_t)r * h;
        if (j->delta) {
            const float* STEER_RESTRICT d = j->delta + (size_t)r * h;
            for (int i = 0; i < h; i++) x[i] = x[i] + d[i];
        }
        if (!j->row_adds) continue;
        for (int a = j->row_adds[r]; a < j->row_adds[r + 1]; a++) {
            const steer_add* t = &j->adds[a];
            apply_term(x + t->offset, j->vectors[t->vector], t, t->width ? t->width : h);
        }
    }
}

STEER_TARGET_AVX512 static void rows_avx512(const residual_job* j, int r0, int r1) { residual_rows(j, r0, r1); }
STEER_TARGET_AVX2 static void rows_avx2(const residual_job* j, int r0, int r1) { residual_rows(j, r0, r1); }
static void rows_portable(const residual_job* j, int r0, int r1) { residual_rows(j, r0, r1); }

static void residual_task(void* ctx, int task, int thread) {
    (void)thread;
    const residual_job* j = (const residual_job*)ctx;
    int r0 = task * j->rows_per_task, r1 = STEER_MIN(j->rows, r0 + j->rows_per_task);
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512) rows_avx512(j, r0, r1);
    else if (isa == STEER_ISA_AVX2) rows_avx2(j, r0, r1);
    else rows_portable(j, r0, r1);
}

void steer_residual_add_steered(float* x, const float* delta, int rows, int h,
                                const int32_t* row_adds, const steer_add* adds, const float* const* vectors) {
    if (rows <= 0) return;
    residual_job j = {x, delta, row_adds, adds, vectors, rows, h, 0};
    int tasks = (size_t)rows * h < 65536 ? 1 : STEER_MIN(rows, 4 * steer_pool_threads());
    j.rows_per_task = (rows + tasks - 1) / tasks;
    steer_parallel_for((rows + j.rows_per_task - 1) / j.rows_per_task, residual_task, &j);
}

void steer_ref_residual_add_steered(float* x, const float* delta, int rows, int row_h,
                                    const int32_t* row_adds, const steer_add* adds, const float* const* vectors) {
    for (int r = 0; r < rows; r++) {
        if (delta)
            for (int i = 0; i < row_h; i++) x[(size_t)r * row_h + i] += delta[(size_t)r * row_h + i];
        if (!row_adds) continue;
        for (int a = row_adds[r]; a < row_adds[r + 1]; a++) {
            const float* v = vectors[adds[a].vector];
            const steer_add* t = &adds[a];
            float* xr = x + (size_t)r * row_h + t->offset;
            int h = t->width ? t->width : row_h;
            if (t->op == STEER_OP_ADD || t->op == STEER_OP_ADD_NORMALIZED) {
                double before = 0, after = 0;
                for (int i = 0; i < h; i++) before += (double)xr[i] * xr[i];
                for (int i = 0; i < h; i++) xr[i] = v[i] * t->multiplier + xr[i];
                if (t->op == STEER_OP_ADD) continue;
                for (int i = 0; i < h; i++) after += (double)xr[i] * xr[i];
                if (after > 0)
                    for (int i = 0; i < h; i++) xr[i] *= (float)sqrt(before / after);
            } else {
                double vv = 0, xv = 0;
                for (int i = 0; i < h; i++) { vv += (double)v[i] * v[i]; xv += (double)xr[i] * v[i]; }
                double norm = sqrt(vv), p = xv / norm, c = p < t->lo ? t->lo : (p > t->hi ? t->hi : p);
                float step = (float)((c - p) / norm);
                for (int i = 0; i < h; i++) xr[i] = v[i] * step + xr[i];
            }
        }
    }
}
