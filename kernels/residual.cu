// The residual add, fused with per-row steering and the capture projections:
//   x ← x + delta;  x_r ← x_r + Σ_e mult[e] · vecs[vec[e]]  (the entries of row r);  proj_out[r] = x_r · dirs
// and the same projections alone, for the states no residual add produces (embedding, final norm).
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
// steer_vec (E) (index into vecs (nv, H) f32) and steer_mult (E).
// proj (nproj, H) f32 and proj_out (T, nproj) f32, or null: the updated row projected on each direction.
// grid (T), block (multiple of 32).
extern "C" __global__ void residual_add_steer(float* __restrict__ x, const float* __restrict__ delta, int hidden,
                                              const int* __restrict__ steer_start, const int* __restrict__ steer_vec,
                                              const float* __restrict__ steer_mult, const float* __restrict__ vecs,
                                              const float* __restrict__ proj, int nproj, float* __restrict__ proj_out)
{
    __shared__ float scratch[32];
    long long r = blockIdx.x;
    float* xr = x + r * hidden;
    const float* dr = delta + r * hidden;
    int e0 = steer_start ? steer_start[r] : 0, e1 = steer_start ? steer_start[r + 1] : 0;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
    {
        float v = xr[i] + dr[i];
        for (int e = e0; e < e1; e++) v = vecs[(long long)steer_vec[e] * hidden + i] * steer_mult[e] + v;
        xr[i] = v;
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
