// Steering at attn.hook_z: each row's attention output (nh·hd, before o_proj) steered by the row's
// terms of this layer in order, each on the whole row or on one head's hd slice, with the operations
// of the residual kernel (steer_entry). The output is bf16 between attention and o_proj: the terms act
// on it in f32 and it is rounded back once.
// Under tensor parallelism a rank holds the heads [lo, lo + qd) of every row. A term that needs the
// whole row (add_normalized or a projection over every head) runs on rows gathered from all ranks
// (attention_heads_to_rows, then an f32 all-reduce, which adds only zeros to each value); the other
// terms (adds, and anything on one head, which one rank holds whole) run on the rank's own heads.
#include "common.cuh"

// rows (T, width) f32 ← att (T, qd) bf16 at columns [lo, lo + qd), zeros elsewhere.
// grid (T), block (any).
extern "C" __global__ void attention_heads_to_rows(const bf16_t* __restrict__ att, int qd, int lo, float* __restrict__ rows,
                                                   int width)
{
    long long r = blockIdx.x;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
        rows[r * width + i] = i >= lo && i < lo + qd ? bf16_to_f32(att[r * qd + i - lo]) : 0.f;
}

// att (T, qd) bf16: the rank's columns [lo, lo + qd) of each row, updated.
// rows (T, width) f32: columns [row_lo, row_lo + width) of each row, where the entries act: with
// gathered, the whole rows (width = nh·hd, row_lo = 0) from attention_heads_to_rows and the all-reduce;
// else scratch that the row's own columns are loaded into here (width = qd, row_lo = lo).
// steer_start (T+1): row r's entries are steer_start[r] .. steer_start[r+1]-1 of steer_vec (E) (a row
// of vecs (nv, vec_width) f32), steer_mult (E), steer_op (E), steer_bounds (E, 2) as in
// residual_add_steer, and steer_slice (E, 2): the entry's columns [offset, offset + count), which take
// the first count values of its vector. An add acts on the part of its columns the window holds; the
// other operations act only on columns the window holds whole (the host gathers the rows of a layer
// where they would not); an entry outside the window is skipped. A row without entries is not touched.
// grid (T), block (multiple of 32).
extern "C" __global__ void attention_steer(bf16_t* __restrict__ att, int qd, int lo, float* __restrict__ rows, int width,
                                           int row_lo, int gathered, const int* __restrict__ steer_start,
                                           const int* __restrict__ steer_vec, const float* __restrict__ steer_mult,
                                           const int* __restrict__ steer_op, const float* __restrict__ steer_bounds,
                                           const int* __restrict__ steer_slice, const float* __restrict__ vecs, int vec_width)
{
    __shared__ float scratch[32];
    long long r = blockIdx.x;
    int e0 = steer_start[r], e1 = steer_start[r + 1];
    if (e0 == e1) return;
    float* xr = rows + r * width;
    bf16_t* ar = att + r * qd;
    if (!gathered)
        for (int i = threadIdx.x; i < qd; i += blockDim.x) xr[i] = bf16_to_f32(ar[i]);
    for (int e = e0; e < e1; e++)
    {
        int offset = steer_slice[2 * e], from = max(offset, row_lo), to = min(offset + steer_slice[2 * e + 1], row_lo + width);
        if (from >= to) continue;
        __syncthreads(); // a term on other columns than the last one's: its elements belong to other threads
        steer_entry(xr + (from - row_lo), vecs + (long long)steer_vec[e] * vec_width + (from - offset), to - from, steer_op[e],
                    steer_mult[e], steer_bounds[2 * e], steer_bounds[2 * e + 1], scratch);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < qd; i += blockDim.x) ar[i] = f32_to_bf16(xr[lo - row_lo + i]);
}
