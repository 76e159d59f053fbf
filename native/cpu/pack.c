/* Weight packing for the GEMM: (rows = out, cols = in) row-major → 16-row panels, k in pairs,
 * 64 bytes per (panel, pair); see steer_cpu.h. Runs once per tensor at load, straight from the
 * memory-mapped file, one panel per task. */
#include "internal.h"

size_t steer_pack_size(int rows, int cols) {
    size_t panels = ((size_t)rows + 15) / 16, pairs = ((size_t)cols + 1) / 2;
    return panels * pairs * 64;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else { /* subnormal: normalize */
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

enum source_type { SOURCE_BF16, SOURCE_F32, SOURCE_F16 };

typedef struct pack_job {
    const void* w;
    int rows, cols, pairs;
    enum source_type type;
    uint16_t* packed;
} pack_job;

static uint16_t element(const pack_job* j, int r, int c) {
    if (r >= j->rows || c >= j->cols) return 0;
    size_t i = (size_t)r * j->cols + c;
    switch (j->type) {
    case SOURCE_BF16: return ((const uint16_t*)j->w)[i];
    case SOURCE_F32: return steer_f32_to_bf16(((const float*)j->w)[i]);
    default: return steer_f32_to_bf16(f16_to_f32(((const uint16_t*)j->w)[i]));
    }
}

static void pack_panel(void* ctx, int panel, int thread) {
    (void)thread;
    const pack_job* j = (const pack_job*)ctx;
    uint16_t* out = j->packed + (size_t)panel * j->pairs * 32;
    int r0 = panel * 16;
    /* Row by row keeps the source reads sequential (it is a memory-mapped file); the panel's
     * writes stay within L2. */
    for (int r = 0; r < 16; r++) {
        int p = 0;
        if (j->type == SOURCE_BF16 && r0 + r < j->rows) {
            const uint16_t* row = (const uint16_t*)j->w + (size_t)(r0 + r) * j->cols;
            for (; p < j->cols / 2; p++) memcpy(out + (size_t)p * 32 + r * 2, row + 2 * p, 4);
        }
        for (; p < j->pairs; p++) {
            out[(size_t)p * 32 + r * 2] = element(j, r0 + r, 2 * p);
            out[(size_t)p * 32 + r * 2 + 1] = element(j, r0 + r, 2 * p + 1);
        }
    }
}

static void pack(const void* w, int rows, int cols, enum source_type type, uint16_t* packed) {
    pack_job j = {w, rows, cols, (cols + 1) / 2, type, packed};
    steer_parallel_for((rows + 15) / 16, pack_panel, &j);
}

void steer_pack_bf16(const uint16_t* w, int rows, int cols, uint16_t* packed) { pack(w, rows, cols, SOURCE_BF16, packed); }
void steer_pack_f32(const float* w, int rows, int cols, uint16_t* packed) { pack(w, rows, cols, SOURCE_F32, packed); }
void steer_pack_f16(const uint16_t* w, int rows, int cols, uint16_t* packed) { pack(w, rows, cols, SOURCE_F16, packed); }
