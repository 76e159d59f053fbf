// cublasGemmEx as the real library defines it, on the CPU: column-major storage, op(A) (m×k),
// op(B) (k×n), C (m×n), leading dimensions checked as cuBLAS checks them, bf16 or f32 operands,
// f32 accumulation. A layout mistake in the caller gives a wrong product or CUBLAS_STATUS_INVALID_VALUE,
// exactly as on the GPU.
#include <cstring>
#include <thread>
#include <vector>

#include "cuemu_api.h"

namespace {

enum { OpN = 0, OpT = 1, OpC = 2 };
enum { R32F = 0, R16BF = 14 };
enum { Compute32F = 68, Compute32FFastBF16 = 75 };
enum { StatusSuccess = 0, StatusInvalidValue = 7, StatusNotSupported = 15 };

float load(const void* p, int type, size_t i)
{
    if (type == R32F) return ((const float*)p)[i];
    unsigned bits = (unsigned)((const unsigned short*)p)[i] << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void store(void* p, int type, size_t i, float v)
{
    if (type == R32F) { ((float*)p)[i] = v; return; }
    unsigned u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { ((unsigned short*)p)[i] = 0x7fc0; return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    ((unsigned short*)p)[i] = (unsigned short)(u >> 16);
}

} // namespace

CUEMU_API int cuemu_gemm_ex(int transa, int transb, int m, int n, int k, const float* alpha, const void* A, int a_type,
                            int lda, const void* B, int b_type, int ldb, const float* beta, void* C, int c_type, int ldc,
                            int compute_type)
{
    auto valid_op = [](int op) { return op == OpN || op == OpT || op == OpC; };
    auto valid_type = [](int t) { return t == R32F || t == R16BF; };
    if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0) return StatusInvalidValue;
    int a_rows = transa == OpN ? m : k, b_rows = transb == OpN ? k : n;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1)) return StatusInvalidValue;
    if (!valid_type(a_type) || !valid_type(b_type) || !valid_type(c_type) || a_type != b_type) return StatusNotSupported;
    if (compute_type != Compute32F && compute_type != Compute32FFastBF16) return StatusNotSupported;
    if (m == 0 || n == 0) return StatusSuccess;

    // op(A) as rows (m, k) and op(B) as columns (n, k), both f32, so every output is one contiguous dot.
    std::vector<float> a_rows_f((size_t)m * k), b_cols_f((size_t)n * k);
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++)
            a_rows_f[(size_t)i * k + p] = load(A, a_type, transa == OpN ? (size_t)i + (size_t)p * lda : (size_t)p + (size_t)i * lda);
    for (int j = 0; j < n; j++)
        for (int p = 0; p < k; p++)
            b_cols_f[(size_t)j * k + p] = load(B, b_type, transb == OpN ? (size_t)p + (size_t)j * ldb : (size_t)j + (size_t)p * ldb);

    float al = *alpha, be = *beta;
    auto rows = [&](int i0, int i1) {
        for (int i = i0; i < i1; i++)
        {
            const float* ar = &a_rows_f[(size_t)i * k];
            for (int j = 0; j < n; j++)
            {
                const float* bc = &b_cols_f[(size_t)j * k];
                float s = 0.f;
#pragma omp simd reduction(+ : s)
                for (int p = 0; p < k; p++) s += ar[p] * bc[p];
                size_t ci = (size_t)i + (size_t)j * ldc;
                // As cuBLAS: with beta = 0, C is not read (it may hold NaN).
                store(C, c_type, ci, be == 0.f ? al * s : al * s + be * load(C, c_type, ci));
            }
        }
    };
    unsigned threads = std::thread::hardware_concurrency();
    if (threads < 2 || (double)m * n * k < 4e6) { rows(0, m); return StatusSuccess; }
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; t++) pool.emplace_back(rows, (int)((long long)m * t / threads), (int)((long long)m * (t + 1) / threads));
    for (auto& th : pool) th.join();
    return StatusSuccess;
}

// cuBLAS's own entry points over the emulated driver (see driver.cpp): a handle belongs to the
// context current when it was made, and a GEMM needs that context current and a stream of it.
#include "driver.h"

namespace {
struct Handle { cuemu::Context* context; cuemu::Stream* stream; };
enum { StatusNotInitialized = 1, StatusExecutionFailed = 13 };
} // namespace

#define CUBLAS_API extern "C" __attribute__((visibility("default")))

CUBLAS_API int cublasCreate_v2(Handle** handle)
{
    if (!cuemu::current_context()) return StatusNotInitialized;
    *handle = new Handle{cuemu::current_context(), nullptr};
    return StatusSuccess;
}

CUBLAS_API int cublasDestroy_v2(Handle* handle)
{
    delete handle;
    return StatusSuccess;
}

CUBLAS_API int cublasSetStream_v2(Handle* handle, cuemu::Stream* stream)
{
    if (!handle) return StatusNotInitialized;
    if (stream && stream->context != handle->context) return StatusInvalidValue;
    handle->stream = stream;
    return StatusSuccess;
}

CUBLAS_API int cublasGemmEx(Handle* handle, int transa, int transb, int m, int n, int k, const float* alpha, const void* A,
                            int a_type, int lda, const void* B, int b_type, int ldb, const float* beta, void* C, int c_type,
                            int ldc, int compute_type, int)
{
    if (!handle) return StatusNotInitialized;
    cuemu::Context* ctx = cuemu::current_context();
    if (ctx != handle->context || ctx->sticky != 0) return StatusExecutionFailed;
    if (!handle->stream) return cuemu_gemm_ex(transa, transb, m, n, k, alpha, A, a_type, lda, B, b_type, ldb, beta, C, c_type, ldc, compute_type);
    float a = *alpha, b = *beta; // host scalars: read at the call, as cuBLAS does in host pointer mode
    return cuemu::enqueue(handle->stream, [=] {
        return cuemu_gemm_ex(transa, transb, m, n, k, &a, A, a_type, lda, B, b_type, ldb, &b, C, c_type, ldc, compute_type);
    });
}

// A workspace of the caller's (what graph capture needs); the emulated GEMM needs none.
CUBLAS_API int cublasSetWorkspace_v2(Handle* handle, void*, size_t)
{
    if (!handle) return StatusNotInitialized;
    return StatusSuccess;
}
