// The C API of libsteer_cuemu.so, what Runtime/Cuda/Emulated binds to. Device memory is host
// memory; a launch runs its blocks one after another on the calling thread.
#pragma once
#include <stddef.h>

#define CUEMU_API extern "C" __attribute__((visibility("default")))

// Kernels: 0 on success, else see cuemu_last_error (per calling thread).
CUEMU_API int cuemu_launch(const char* kernel, unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x,
                           unsigned block_y, unsigned block_z, unsigned shared_bytes, void** args);
CUEMU_API const char* cuemu_last_error();
CUEMU_API int cuemu_kernel_count();
CUEMU_API const char* cuemu_kernel_name(int i);

CUEMU_API void* cuemu_malloc(size_t bytes);
CUEMU_API void cuemu_free(void* p);

// cublasGemmEx without the handle: column-major C = alpha·op(A)·op(B) + beta·C; op 0 = N, 1 = T;
// types CUDA_R_32F (0) or CUDA_R_16BF (14); compute CUBLAS_COMPUTE_32F (68). Returns a cublasStatus_t.
CUEMU_API int cuemu_gemm_ex(int transa, int transb, int m, int n, int k, const float* alpha, const void* A, int a_type,
                            int lda, const void* B, int b_type, int ldb, const float* beta, void* C, int c_type, int ldc,
                            int compute_type);

// ncclCommInitAll over emulated devices: comms[0..n-1], one per rank, each used by its own thread.
// Collectives take ncclDataType_t (ncclFloat32 = 7) and ncclRedOp_t (ncclSum = 0); return an ncclResult_t.
CUEMU_API int cuemu_comm_init_all(void** comms, int n);
CUEMU_API int cuemu_comm_destroy(void* comm);
// ncclCommAbort's first half: every collective of the group, waiting or to come, fails (ncclRemoteError).
CUEMU_API int cuemu_comm_abort(void* comm);
CUEMU_API int cuemu_all_reduce(const void* send, void* recv, size_t count, int datatype, int op, void* comm);
CUEMU_API int cuemu_all_gather(const void* send, void* recv, size_t count, int datatype, void* comm);
