using System.Runtime.InteropServices;

namespace SteerEngine.Runtime.Cuda.Native;

/// <summary>libsteer_cuemu (native/cuemu/cuemu_api.h): the kernels, cuBLAS GEMM and NCCL collectives emulated on the CPU.</summary>
static unsafe partial class CuemuApi
{
    const string Lib = "steer_cuemu";
    static CuemuApi() => CudaLibraries.EnsureResolver();

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int cuemu_launch(string kernel, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ, uint sharedBytes, void** args);
    [LibraryImport(Lib)] public static partial byte* cuemu_last_error();
    [LibraryImport(Lib)] public static partial int cuemu_kernel_count();
    [LibraryImport(Lib)] public static partial byte* cuemu_kernel_name(int index);
    [LibraryImport(Lib)] public static partial void* cuemu_malloc(nuint bytes);
    [LibraryImport(Lib)] public static partial void cuemu_free(void* pointer);
    [LibraryImport(Lib)] public static partial int cuemu_gemm_ex(int transa, int transb, int m, int n, int k, float* alpha,
        ulong a, int aType, int lda, ulong b, int bType, int ldb, float* beta, ulong c, int cType, int ldc, int computeType);
    [LibraryImport(Lib)] public static partial int cuemu_comm_init_all(IntPtr* comms, int count);
    [LibraryImport(Lib)] public static partial int cuemu_comm_destroy(IntPtr comm);
    [LibraryImport(Lib)] public static partial int cuemu_comm_abort(IntPtr comm);
    [LibraryImport(Lib)] public static partial int cuemu_all_reduce(ulong send, ulong receive, nuint count, int dataType, int op, IntPtr comm);
    [LibraryImport(Lib)] public static partial int cuemu_all_gather(ulong send, ulong receive, nuint count, int dataType, IntPtr comm);

    public static string LastError => Marshal.PtrToStringUTF8((IntPtr)cuemu_last_error()) ?? "";
}
