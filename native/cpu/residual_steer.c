/* The block's residual add fused with per-row steering: x ← x + delta, then each row's own
 * list of (vector, multiplier) adds. One pass over x instead of one per steering term. The
 * multiply and add are not fused, so the result is bit-identical to the C# reference
 * (TensorPrimitives.Add, then MultiplyAdd). */
#include "internal.h"

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
            const float* STEER_RESTRICT v = j->vectors[j->adds[a].vector];
            float mult = j->adds[a].multiplier;
            for (int i = 0; i < h; i++) x[i] = v[i] * mult + x[i];
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

void steer_ref_residual_add_steered(float* x, const float* delta, int rows, int h,
                                    const int32_t* row_adds, const steer_add* adds, const float* const* vectors) {
    for (int r = 0; r < rows; r++) {
        float* xr = x + (size_t)r * h;
        if (delta)
            for (int i = 0; i < h; i++) xr[i] += delta[(size_t)r * h + i];
        if (!row_adds) continue;
        for (int a = row_adds[r]; a < row_adds[r + 1]; a++)
            for (int i = 0; i < h; i++) xr[i] = vectors[adds[a].vector][i] * adds[a].multiplier + xr[i];
    }
}
