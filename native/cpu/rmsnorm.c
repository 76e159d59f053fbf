/* RMSNorm: y = x · rsqrt(mean(x²) + eps) · weight, per row. The sum of squares is taken in
 * double, as in the C# reference, so both paths compute the same scale. */
#include "internal.h"

typedef struct rmsnorm_job {
    const float* x;
    const float* w;
    float* y;
    int rows, n, rows_per_task;
    float eps;
} rmsnorm_job;

STEER_INLINE void rmsnorm_rows(const rmsnorm_job* j, int r0, int r1) {
    int n = j->n;
    for (int r = r0; r < r1; r++) {
        const float* STEER_RESTRICT x = j->x + (size_t)r * n;
        float* y = j->y + (size_t)r * n;
        double part[8] = {0};
        int i = 0;
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) part[l] += (double)x[i + l] * x[i + l];
        double ss = 0;
        for (; i < n; i++) ss += (double)x[i] * x[i];
        for (int l = 0; l < 8; l++) ss += part[l];
        float scale = (float)(1.0 / sqrt(ss / n + j->eps));
        for (i = 0; i < n; i++) y[i] = x[i] * scale * j->w[i];
    }
}

STEER_TARGET_AVX512 static void rows_avx512(const rmsnorm_job* j, int r0, int r1) { rmsnorm_rows(j, r0, r1); }
STEER_TARGET_AVX2 static void rows_avx2(const rmsnorm_job* j, int r0, int r1) { rmsnorm_rows(j, r0, r1); }
static void rows_portable(const rmsnorm_job* j, int r0, int r1) { rmsnorm_rows(j, r0, r1); }

static void rmsnorm_task(void* ctx, int task, int thread) {
    (void)thread;
    const rmsnorm_job* j = (const rmsnorm_job*)ctx;
    int r0 = task * j->rows_per_task, r1 = STEER_MIN(j->rows, r0 + j->rows_per_task);
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512) rows_avx512(j, r0, r1);
    else if (isa == STEER_ISA_AVX2) rows_avx2(j, r0, r1);
    else rows_portable(j, r0, r1);
}

void steer_rmsnorm(const float* x, const float* weight, float* y, int rows, int n, float eps) {
    if (rows <= 0) return;
    rmsnorm_job j = {x, weight, y, rows, n, 0, eps};
    int tasks = (size_t)rows * n < 32768 ? 1 : STEER_MIN(rows, 4 * steer_pool_threads());
    j.rows_per_task = (rows + tasks - 1) / tasks;
    steer_parallel_for((rows + j.rows_per_task - 1) / j.rows_per_task, rmsnorm_task, &j);
}

void steer_ref_rmsnorm(const float* x, const float* weight, float* y, int rows, int n, float eps) {
    for (int r = 0; r < rows; r++) {
        const float* xr = x + (size_t)r * n;
        float* yr = y + (size_t)r * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / n + eps));
        for (int i = 0; i < n; i++) yr[i] = xr[i] * scale * weight[i];
    }
}
