using System.Runtime.InteropServices;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Runtime.Cuda.Native;

/// <summary>NVRTC, the run-time CUDA C++ compiler (libnvrtc). Calls return an nvrtcResult (0 = success).</summary>
static unsafe partial class NvrtcApi
{
    const string Lib = "nvrtc";
    static NvrtcApi() => CudaLibraries.EnsureResolver();

    [LibraryImport(Lib)] public static partial int nvrtcVersion(int* major, int* minor);
    [LibraryImport(Lib)] public static partial int nvrtcCreateProgram(IntPtr* program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] public static partial int nvrtcCompileProgram(IntPtr program, int optionCount, byte** options);
    [LibraryImport(Lib)] public static partial int nvrtcDestroyProgram(IntPtr* program);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLogSize(IntPtr program, nuint* size);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLog(IntPtr program, byte* log);
    [LibraryImport(Lib)] public static partial int nvrtcGetPTXSize(IntPtr program, nuint* size);
    [LibraryImport(Lib)] public static partial int nvrtcGetPTX(IntPtr program, byte* ptx);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBINSize(IntPtr program, nuint* size);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBIN(IntPtr program, byte* cubin);
    [LibraryImport(Lib)] public static partial byte* nvrtcGetErrorString(int result);

    public static void Check(int result, string call)
    {
        if (result != 0) throw new CudaException($"{call} failed: {Marshal.PtrToStringUTF8((IntPtr)nvrtcGetErrorString(result))}");
    }
}
