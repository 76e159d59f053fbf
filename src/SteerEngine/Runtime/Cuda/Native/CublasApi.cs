using System.Runtime.InteropServices;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Runtime.Cuda.Native;

/// <summary>cuBLAS (libcublas): the one GEMM entry the backend needs. Calls return a cublasStatus_t (0 = success).</summary>
static unsafe partial class CublasApi
{
    const string Lib = "cublas";
    static CublasApi() => CudaLibraries.EnsureResolver();

    public const int ComputeF32 = 68;       // CUBLAS_COMPUTE_32F
    public const int GemmDefault = -1;      // CUBLAS_GEMM_DEFAULT

    [LibraryImport(Lib, EntryPoint = "cublasCreate_v2")] public static partial int cublasCreate(IntPtr* handle);
    [LibraryImport(Lib, EntryPoint = "cublasDestroy_v2")] public static partial int cublasDestroy(IntPtr handle);
    [LibraryImport(Lib, EntryPoint = "cublasSetStream_v2")] public static partial int cublasSetStream(IntPtr handle, IntPtr stream);
    [LibraryImport(Lib, EntryPoint = "cublasSetWorkspace_v2")] public static partial int cublasSetWorkspace(IntPtr handle, ulong workspace, nuint bytes);
    [LibraryImport(Lib)] public static partial int cublasGemmEx(IntPtr handle, int transa, int transb, int m, int n, int k,
        float* alpha, ulong a, int aType, int lda, ulong b, int bType, int ldb, float* beta, ulong c, int cType, int ldc,
        int computeType, int algorithm);

    public static void Check(int status, string call)
    {
        if (status != 0) throw new CudaException($"{call} failed: cublasStatus {status}");
    }
}
