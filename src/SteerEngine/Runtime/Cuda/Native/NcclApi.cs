using System.Runtime.InteropServices;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Runtime.Cuda.Native;

/// <summary>NCCL (libnccl): communicators and the two collectives tensor parallelism needs. Calls return an ncclResult_t.</summary>
static unsafe partial class NcclApi
{
    const string Lib = "nccl";
    static NcclApi() => CudaLibraries.EnsureResolver();

    public const int Float32 = 7; // ncclFloat32
    public const int Sum = 0;     // ncclSum

    /// <summary>ncclUniqueId: 128 opaque bytes, made by one rank and shared with the others (multi-node bootstrap).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 128)]
    public struct UniqueId { public fixed byte Bytes[128]; }

    [LibraryImport(Lib)] public static partial int ncclGetVersion(int* version);
    [LibraryImport(Lib)] public static partial int ncclGetUniqueId(UniqueId* id);
    [LibraryImport(Lib)] public static partial int ncclCommInitRank(IntPtr* comm, int ranks, UniqueId id, int rank);
    [LibraryImport(Lib)] public static partial int ncclCommInitAll(IntPtr* comms, int count, int* devices);
    [LibraryImport(Lib)] public static partial int ncclCommDestroy(IntPtr comm);
    [LibraryImport(Lib)] public static partial int ncclCommAbort(IntPtr comm);
    [LibraryImport(Lib)] public static partial int ncclAllReduce(ulong send, ulong receive, nuint count, int dataType, int op, IntPtr comm, IntPtr stream);
    [LibraryImport(Lib)] public static partial int ncclAllGather(ulong send, ulong receive, nuint sendCount, int dataType, IntPtr comm, IntPtr stream);
    [LibraryImport(Lib)] public static partial byte* ncclGetErrorString(int result);

    public static void Check(int result, string call)
    {
        if (result != 0) throw new CudaException($"{call} failed: {Marshal.PtrToStringUTF8((IntPtr)ncclGetErrorString(result))}");
    }
}
