/* SwiGLU activation: gate ← silu(gate) · up = gate / (1 + exp(-gate)) · up. */
#include "internal.h"

typedef struct swiglu_job {
    float* gate;
    const float* up;
    int64_t count, chunk;
} swiglu_job;

STEER_INLINE void swiglu_range(float* STEER_RESTRICT gate, const float* STEER_RESTRICT up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + steer_expf(-g)) * up[i];
    }
}

STEER_TARGET_AVX512 static void range_avx512(float* gate, const float* up, int64_t n) { swiglu_range(gate, up, n); }
STEER_TARGET_AVX2 static void range_avx2(float* gate, const float* up, int64_t n) {
    int64_t i = 0;
#ifdef STEER_HAVE_X86
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = steer_expf_avx2(_mm256_xor_ps(g, sign));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
#endif
    swiglu_range(gate + i, up + i, n - i);
}
static void range_portable(float* gate, const float* up, int64_t n) { swiglu_range(gate, up, n); }

static void swiglu_task(void* ctx, int task, int thread) {
    (void)thread;
    const swiglu_job* j = (const swiglu_job*)ctx;
    int64_t i0 = task * j->chunk, n = STEER_MIN(j->count - i0, j->chunk);
    int isa = steer_isa_current();
    if (isa >= STEER_ISA_AVX512) range_avx512(j->gate + i0, j->up + i0, n);
    else if (isa == STEER_ISA_AVX2) range_avx2(j->gate + i0, j->up + i0, n);
    else range_portable(j->gate + i0, j->up + i0, n);
}

void steer_swiglu(float* gate, const float* up, int64_t count) {
    if (count <= 0) return;
    swiglu_job j = {gate, up, count, 0};
    int64_t tasks = count < 16384 ? 1 : STEER_MIN(count / 4096, 4 * steer_pool_threads());
    j.chunk = ((count + tasks - 1) / tasks + 15) / 16 * 16;
    steer_parallel_for((int)((count + j.chunk - 1) / j.chunk), swiglu_task, &j);
}

void steer_ref_swiglu(float* gate, const float* up, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
