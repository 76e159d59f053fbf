/* steer_cpu: the CPU kernels of SteerEngine's forward pass.
 *
 * Conventions
 *   - Matrices are row-major; every argument's shape is in the comment beside it.
 *   - Activations and the residual stream are f32. Weights are bf16, repacked once at load
 *     (steer_pack_*) into 16-row panels for the GEMM micro-kernel.
 *   - Every op splits its work over the library's persistent thread pool (steer_cpu_init).
 *     The library is driven by one calling thread at a time; calls are not reentrant.
 *   - Every fast kernel has a plain scalar reference, exported as steer_ref_<op> with the
 *     same signature, so tests can compare the two.
 */
#ifndef STEER_CPU_H
#define STEER_CPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define STEER_API __declspec(dllexport)
#else
#define STEER_API __attribute__((visibility("default")))
#endif

/* ---- machine, dispatch, thread pool ---------------------------------------------------- */

/* steer_cpu_features() bits: what this CPU and OS support. */
#define STEER_CPU_AVX2_FMA    1u /* AVX2 + FMA3 */
#define STEER_CPU_AVX512      2u /* AVX-512 F, BW, VL, DQ with OS-enabled zmm state */
#define STEER_CPU_AVX512_BF16 4u /* AVX512_BF16 (vdpbf16ps) on top of STEER_CPU_AVX512 */

/* Instruction-set levels the kernels are written for, lowest to highest. */
#define STEER_ISA_SCALAR      0
#define STEER_ISA_AVX2        1
#define STEER_ISA_AVX512      2
#define STEER_ISA_AVX512_BF16 3

STEER_API uint32_t steer_cpu_features(void);

/* Caps the ISA the kernels use (tests force the fallbacks). isa: STEER_ISA_*, or -1 for the
 * best this CPU has. Returns the level now in effect: min(isa, best available). */
STEER_API int steer_cpu_set_isa(int isa);
STEER_API int steer_cpu_isa(void);

/* Starts (or restarts) the thread pool. threads <= 0: one per online CPU. The calling thread
 * is worker 0. Returns the number of threads. Ops called before init start a default pool. */
STEER_API int steer_cpu_init(int threads);
STEER_API int steer_cpu_threads(void);
STEER_API void steer_cpu_shutdown(void);

/* ---- weight packing ------------------------------------------------------------------- */

/* Packed layout ("panels"): output rows are grouped in panels of 16, input columns in pairs.
 * Panel p, pair j holds 32 bf16 at packed[(p * pairs + j) * 32 + r * 2 + e] = w[16p + r][2j + e],
 * i.e. 64 bytes per (panel, pair), panel-major, so a panel streams contiguously along k.
 * Rows past `rows` and the odd column past `cols` are zero.
 * pairs = (cols + 1) / 2, panels = (rows + 15) / 16. */
STEER_API size_t steer_pack_size(int rows, int cols); /* bytes */

/* w: (rows = out, cols = in) bf16 bits; packed: steer_pack_size(rows, cols) bytes, 64-byte aligned */
STEER_API void steer_pack_bf16(const uint16_t* w, int rows, int cols, uint16_t* packed);
/* w: (rows, cols) f32, rounded to bf16 to nearest-even */
STEER_API void steer_pack_f32(const float* w, int rows, int cols, uint16_t* packed);
/* w: (rows, cols) IEEE f16 bits, widened exactly and rounded to bf16 to nearest-even */
STEER_API void steer_pack_f16(const uint16_t* w, int rows, int cols, uint16_t* packed);

/* ---- GEMM ----------------------------------------------------------------------------- */

/* y = x · Wᵀ. x is rounded to bf16 (nearest-even) once per call; products accumulate in f32.
 * x: (m, k) f32; packed: W (n = out, k = in) packed by steer_pack_*(w, n, k, ...); y: (m, n) f32 */
STEER_API void steer_gemm_bf16(const float* x, int m, int k, const uint16_t* packed, int n, float* y);
/* GEMMs run either on vdpbf16ps or on f32 FMAs over weights widened block by block, which give
 * bitwise the same y. Which is faster depends on the core (vdpbf16ps issues at the f32 FMA rate
 * on some, at half of it on others) and on m (up to ~12 rows reading the weights is the bound and
 * vdpbf16ps streams them best), so the first call times both. Tests and benchmarks can force
 * one. Returns the mode now set. */
#define STEER_GEMM_AUTO 0
#define STEER_GEMM_DOT  1 /* vdpbf16ps (AVX512_BF16), or shift-widening in registers (AVX-512F) */
#define STEER_GEMM_WIDE 2 /* f32 FMA over widened weight blocks (AVX-512F and up) */
STEER_API int steer_cpu_set_gemm_mode(int mode);

/* Reference: same rounding of x, products summed in double, rounded once to f32. */
STEER_API void steer_ref_gemm_bf16(const float* x, int m, int k, const uint16_t* packed, int n, float* y);

/* ---- elementwise and row ops --------------------------------------------------------- */

/* y = x · rsqrt(mean(x²) + eps) · weight per row.
 * x: (rows, n); weight: (n); y: (rows, n), may alias x */
STEER_API void steer_rmsnorm(const float* x, const float* weight, float* y, int rows, int n, float eps);
STEER_API void steer_ref_rmsnorm(const float* x, const float* weight, float* y, int rows, int n, float eps);

/* Rotary embedding in place, HF "rotate half" layout: element i pairs with i + hd/2.
 * The angle is the f32 product (float)position · inv_freq[i], then cos/sin of it.
 * x: (rows, heads * hd); positions: (rows); inv_freq: (hd / 2); hd even */
STEER_API void steer_rope(float* x, int rows, int heads, int hd, const int32_t* positions, const float* inv_freq);
STEER_API void steer_ref_rope(float* x, int rows, int heads, int hd, const int32_t* positions, const float* inv_freq);

/* gate ← silu(gate) · up. gate: (count) overwritten; up: (count) */
STEER_API void steer_swiglu(float* gate, const float* up, int64_t count);
STEER_API void steer_ref_swiglu(float* gate, const float* up, int64_t count);

/* The operations of a steering term (C# SteeringOp, same values). */
enum { STEER_OP_ADD = 0, STEER_OP_ADD_NORMALIZED = 1, STEER_OP_ABLATE = 2, STEER_OP_CAP = 3, STEER_OP_SET = 4 };

/* One steering term of a row, on the row's elements [offset, offset + width) (width 0: the whole
 * row, offset 0), call them s: with op ADD, s += multiplier · vectors[vector]; ADD_NORMALIZED adds,
 * then rescales s to its norm before the add; ABLATE, CAP and SET clamp the projection of s on the
 * vector's direction to [lo, hi] (ablate 0, 0; set value, value). The vector holds width values. */
typedef struct steer_add {
    int32_t vector;   /* index into the vectors table */
    float multiplier;
    int32_t op;       /* STEER_OP_* */
    float lo, hi;
    int32_t offset, width; /* the slice of the row (one attention head's); width 0 = the whole row */
} steer_add;

/* The block's residual add fused with per-row steering:
 *   x ← x + delta; then for each row r, for a in adds[row_adds[r] .. row_adds[r+1]):
 *   x_r ← a applied to x_r or its slice (steer_add)   (in list order, unfused multiply then add, sums in double)
 * x: (rows, h) updated in place; delta: (rows, h) or NULL for no residual add;
 * row_adds: (rows + 1) offsets into adds, or NULL for no steering; adds: (row_adds[rows]);
 * vectors: table of pointers, each (h) */
STEER_API void steer_residual_add_steered(float* x, const float* delta, int rows, int h,
                                          const int32_t* row_adds, const steer_add* adds, const float* const* vectors);
STEER_API void steer_ref_residual_add_steered(float* x, const float* delta, int rows, int h,
                                              const int32_t* row_adds, const steer_add* adds, const float* const* vectors);

/* out = log_softmax(logits) per row. logits: (rows, v); out: (rows, v), may alias logits */
STEER_API void steer_log_softmax(const float* logits, float* out, int rows, int v);
STEER_API void steer_ref_log_softmax(const float* logits, float* out, int rows, int v);

/* ---- attention ------------------------------------------------------------------------- */

/* One sequence of an attention batch: its new tokens are rows [row, row + n) of q and out, and
 * its KV cache (new tokens already written) holds start + n rows. New token i sits at position
 * start + i and sees cache rows 0 .. start + i (causal). */
typedef struct steer_attn_seq {
    const float* k; /* (start + n, nkv * hd) the sequence's cached keys */
    const float* v; /* (start + n, nkv * hd) cached values */
    int32_t row;    /* first row of this sequence in q / out */
    int32_t n;      /* new tokens */
    int32_t start;  /* cache rows before the new tokens */
    int32_t pad_;   /* zero */
} steer_attn_seq;

/* Causal grouped-query attention over many sequences (prefill: n > 1; decode: n = 1 each).
 * Query head h reads KV head h / (nh / nkv). Scores are scaled by 1 / sqrt(hd).
 * q: (T, nh * hd) rotated queries; out: (T, nh * hd); seqs: (nseq); hd <= 256 */
STEER_API void steer_attention(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd);
STEER_API void steer_ref_attention(const float* q, float* out, const steer_attn_seq* seqs, int nseq, int nh, int nkv, int hd);

/* ---- machine probes (roofline), all threads -------------------------------------------- */

/* Streaming read of a bytes-sized buffer (make it much larger than L3): the fastest of iters
 * passes. GB/s. */
STEER_API double steer_probe_read_bandwidth(int64_t bytes, int iters);
/* Peak f32 FMA throughput at the current ISA, 2 flops per multiply-add. GFLOP/s. */
STEER_API double steer_probe_f32_fma_gflops(void);
/* Peak vdpbf16ps throughput, 2 flops per bf16 multiply-add (64 per zmm instruction). GFLOP/s;
 * 0 when the CPU has no AVX512_BF16. */
STEER_API double steer_probe_bf16_dot_gflops(void);

#ifdef __cplusplus
}
#endif

#endif
