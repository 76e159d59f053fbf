// The residual add, fused with per-row steering and the capture projections:
//   x ← x + delta;  then each entry e of row r in order: by default x_r ← x_r + mult[e] · vecs[vec[e]];
//   proj_out[r] = x_r · dirs
// and the same projections alone, for the states no residual add produces (embedding, final norm).
// The steering operations (steer_entry, common.cuh) are the CPU path's, with the sums in f32 block
// reductions instead of f64 in index order.
#include "common.cuh"

// out (nproj) f32 ← xr (H) · proj (nproj, H)ᵀ, by the whole block (thread 0 writes).
template <typename Scratch>
__device__ __forceinline__ void project_row(const float* xr, int hidden, const float* proj, int nproj, float* out, Scratch& scratch)
{
    for (int d = 0; d < nproj; d++)
    {
        float dot = 0.f;
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) dot += xr[i] * proj[(long long)d * hidden + i];
        dot = block_sum(dot, scratch);
        if (threadIdx.x == 0) out[d] = dot;
    }
}

// x (T, H) f32, updated; delta (T, H) f32.
// steer_start (T+1) or null: row r's entries are steer_start[r] .. steer_start[r+1]-1 of
// steer_vec (E) (index into vecs (nv, H) f32), steer_mult (E), and steer_op (E) with
// steer_bounds (E, 2) = the projection's clamp [lo, hi] (ablate 0, 0; set value, value), or
// steer_op null: every entry an add. Rows of adds only take the one fused pass of the plain add.
// proj (nproj, H) f32 and proj_out (T, nproj) f32, or null: the updated row projected on each direction.
// grid (T), block (multiple of 32).
extern "C" __global__ void residual_add_steer(float* __restrict__ x, const float* __restrict__ delta, int hidden,
                                              const int* __restrict__ steer_start, const int* __restrict__ steer_vec,
                                              const float* __restrict__ steer_mult, const int* __restrict__ steer_op,
                                              const float* __restrict__ steer_bounds, const float* __restrict__ vecs,
                                              const float* __restrict__ proj, int nproj, float* __restrict__ proj_out)
{
    __shared__ float scratch[32];
    long long r = blockIdx.x;
    float* xr = x + r * hidden;
    const float* dr = delta + r * hidden;
    int e0 = steer_start ? steer_start[r] : 0, e1 = steer_start ? steer_start[r + 1] : 0;
    bool adds_only = true;
    for (int e = e0; e < e1 && steer_op; e++) adds_only = adds_only && steer_op[e] == STEER_OP_ADD;
    if (adds_only)
    {
        for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        {
            float v = xr[i] + dr[i];
            for (int e = e0; e < e1; e++) v = vecs[(long long)steer_vec[e] * hidden + i] * steer_mult[e] + v;
            xr[i] = v;
        }
    }
    else
    {
        for (int i = threadIdx.x; i < hidden; i += blockDim.x) xr[i] = xr[i] + dr[i];
        for (int e = e0; e < e1; e++)
            steer_entry(xr, vecs + (long long)steer_vec[e] * hidden, hidden, steer_op[e], steer_mult[e], steer_bounds[2 * e],
                        steer_bounds[2 * e + 1], scratch);
    }
    if (proj) project_row(xr, hidden, proj, nproj, proj_out + r * nproj, scratch);
}

// proj_out (T, nproj) f32 = x (T, H) f32 · proj (nproj, H)ᵀ. grid (T), block (multiple of 32).
extern "C" __global__ void project_rows(const float* __restrict__ x, int hidden, const float* __restrict__ proj, int nproj,
                                        float* __restrict__ proj_out)
{
    __shared__ float scratch[32];
    long long r = blockIdx.x;
    project_row(x + r * hidden, hidden, proj, nproj, proj_out + r * nproj, scratch);
}
