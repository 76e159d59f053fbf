/* Rotary position embedding, HF "rotate half" layout: element i pairs with i + hd/2.
 * Like HF and the C# reference, the angle is the f32 product (float)position · inv_freq[i];
 * its cos and sin are taken in double and rounded to f32. */
#include "internal.h"

#define MAX_HALF 512

typedef struct rope_job {
    float* x;
    const int32_t* positions;
    const float* inv_freq;
    int rows, heads, hd, rows_per_task;
} rope_job;

STEER_INLINE void rope_rows(const rope_job* j, int r0, int r1) {
    int half = j->hd / 2;
    float cs[MAX_HALF], sn[MAX_HALF];
    for (int r = r0; r < r1; r++) {
        float position = (float)j->positions[r];
        for (int i = 0; i < half; i++) {
            double angle = (double)(position * j->inv_freq[i]);
            cs[i] = (float)cos(angle);
            sn[i] = (float)sin(angle);
        }
        for (int h = 0; h < j->heads; h++) {
            float* STEER_RESTRICT a = j->x + (size_t)r * j->heads * j->hd + (size_t)h * j->hd;
            float* STEER_RESTRICT b = a + half;
            for (int i = 0; i < half; i++) {
                float x1 = a[i], x2 = b[i];
                a[i] = x1 * cs[i] - x2 * sn[i];
                b[i] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

STEER_TARGET_AVX512 static void rows_avx512(const rope_job* j, int r0, int r1) { rope_rows(j, r0, r1); }
STEER_TARGET_AVX2 static void rows_avx2(const rope_job* j, int r0, int r1) { rope_rows(j, r0, r1); }
static void rows_portable(const rope_job* j, int r0, int r1) { rope_rows(j, r0, r1); }

static void rope_task(void* ctx, int task, int thread) {
    (void)thread;
    const rope_job* j = (const rope_job*)ctx;
    int r0 = task * j->rows_per_task, r1 = STEER_MIN(j->rows, r0 + j->rows_per_task);
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512) rows_avx512(j, r0, r1);
    else if (isa == STEER_ISA_AVX2) rows_avx2(j, r0, r1);
    else rows_portable(j, r0, r1);
}

void steer_rope(float* x, int rows, int heads, int hd, const int32_t* positions, const float* inv_freq) {
    if (rows <= 0 || hd / 2 > MAX_HALF) return;
    rope_job j = {x, positions, inv_freq, rows, heads, hd, 0};
    int tasks = rows < 4 ? 1 : STEER_MIN(rows, 4 * steer_pool_threads());
    j.rows_per_task = (rows + tasks - 1) / tasks;
    steer_parallel_for((rows + j.rows_per_task - 1) / j.rows_per_task, rope_task, &j);
}

void steer_ref_rope(float* x, int rows, int heads, int hd, const int32_t* positions, const float* inv_freq) {
    int half = hd / 2;
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++) {
            float* v = x + ((size_t)r * heads + h) * hd;
            for (int i = 0; i < half; i++) {
                double angle = (double)((float)positions[r] * inv_freq[i]);
                float c = (float)cos(angle), s = (float)sin(angle);
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
}
