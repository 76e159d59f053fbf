/* log_softmax over each row of logits: x - max - log(Σ exp(x - max)). */
#include "internal.h"

typedef struct logsoftmax_job {
    const float* logits;
    float* out;
    int rows, v;
} logsoftmax_job;

STEER_INLINE void logsoftmax_row(const float* STEER_RESTRICT x, float* out, int v) {
    float part[16];
    for (int l = 0; l < 16; l++) part[l] = -INFINITY;
    int i = 0;
    for (; i + 16 <= v; i += 16)
        for (int l = 0; l < 16; l++) part[l] = part[l] > x[i + l] ? part[l] : x[i + l];
    float max = -INFINITY;
    for (; i < v; i++) max = max > x[i] ? max : x[i];
    for (int l = 0; l < 16; l++) max = max > part[l] ? max : part[l];
    float sum[16] = {0};
    for (i = 0; i + 16 <= v; i += 16)
        for (int l = 0; l < 16; l++) sum[l] += steer_expf(x[i + l] - max);
    double total = 0;
    for (; i < v; i++) total += steer_expf(x[i] - max);
    for (int l = 0; l < 16; l++) total += sum[l];
    float shift = max + (float)log(total);
    for (i = 0; i < v; i++) out[i] = x[i] - shift;
}

STEER_TARGET_AVX512 static void row_avx512(const float* x, float* out, int v) { logsoftmax_row(x, out, v); }
STEER_TARGET_AVX2 static void row_avx2(const float* x, float* out, int v) { logsoftmax_row(x, out, v); }
static void row_portable(const float* x, float* out, int v) { logsoftmax_row(x, out, v); }

static void logsoftmax_task(void* ctx, int row, int thread) {
    (void)thread;
    const logsoftmax_job* j = (const logsoftmax_job*)ctx;
    const float* x = j->logits + (size_t)row * j->v;
    float* out = j->out + (size_t)row * j->v;
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512) row_avx512(x, out, j->v);
    else if (isa == STEER_ISA_AVX2) row_avx2(x, out, j->v);
    else row_portable(x, out, j->v);
}

void steer_log_softmax(const float* logits, float* out, int rows, int v) {
    logsoftmax_job j = {logits, out, rows, v};
    steer_parallel_for(rows, logsoftmax_task, &j);
}

void steer_ref_log_softmax(const float* logits, float* out, int rows, int v) {
    for (int r = 0; r < rows; r++) {
        const float* x = logits + (size_t)r * v;
        float max = -INFINITY;
        for (int i = 0; i < v; i++) max = x[i] > max ? x[i] : max;
        double sum = 0;
        for (int i = 0; i < v; i++) sum += exp((double)x[i] - max);
        double shift = max + log(sum);
        for (int i = 0; i < v; i++) out[(size_t)r * v + i] = (float)(x[i] - shift);
    }
}
