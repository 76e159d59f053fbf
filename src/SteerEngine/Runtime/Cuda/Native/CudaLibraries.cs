using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace SteerEngine.Runtime.Cuda.Native;

/// <summary>
/// Finds the shared libraries behind the [LibraryImport] names "cuda", "nvrtc", "cublas", "nccl" and
/// "steer_cuemu": the CUDA libraries ship only versioned sonames (libcuda.so.1, libnvrtc.so.12 …),
/// and the emulator is found where <see cref="EngineNativeLibraries"/> looks (the package layout, or
/// out/native-cuemu where build.sh builds it). Registered through
/// AssemblyLoadContext.ResolvingUnmanagedDll, which (unlike a DllImportResolver) other parts of
/// the engine can also hook. With STEER_CUDA_DRIVER=cuemu, "cuda", "cublas" and "nccl" resolve to
/// the emulator, which also exports the driver's, cuBLAS's and NCCL's entry points
/// (native/cuemu/driver.cpp): the driver path runs on the CPU, for its tests and the GPU check's
/// dry run. It must be set before the first CUDA call of the process.
/// </summary>
static class CudaLibraries
{
    static int _registered;

    public static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += Resolve;
    }

    static IntPtr Resolve(Assembly assembly, string name)
    {
        if (assembly != typeof(CudaLibraries).Assembly) return IntPtr.Zero;
        foreach (string candidate in Candidates(name))
            if (NativeLibrary.TryLoad(candidate, out IntPtr handle)) return handle;
        return IntPtr.Zero;
    }

    /// <summary>Whether the driver, cuBLAS and NCCL are the emulator's (STEER_CUDA_DRIVER=cuemu).</summary>
    public static bool DriverIsEmulated => Environment.GetEnvironmentVariable("STEER_CUDA_DRIVER") == "cuemu";

    static IEnumerable<string> Candidates(string name)
    {
        if (DriverIsEmulated && name is "cuda" or "cublas" or "nccl") name = "steer_cuemu";
        switch (name)
        {
            case "cuda":
                yield return "libcuda.so.1";
                yield return "libcuda.so";
                yield return "nvcuda.dll";
                break;
            case "nvrtc":
                foreach (string v in new[] { "", ".12", ".11.2" }) yield return "libnvrtc.so" + v;
                yield return "nvrtc64_120_0.dll";
                yield return "nvrtc64_112_0.dll";
                break;
            case "cublas":
                foreach (string v in new[] { ".12", ".11", "" }) yield return "libcublas.so" + v;
                yield return "cublas64_12.dll";
                break;
            case "nccl":
                yield return "libnccl.so.2";
                yield return "libnccl.so";
                break;
            case "steer_cuemu":
                if (Environment.GetEnvironmentVariable("STEER_CUEMU_LIB") is { Length: > 0 } env) yield return env;
                foreach (string dir in EngineNativeLibraries.Directories(["out", "native-cuemu"]))
                {
                    string path = Path.Combine(dir, "libsteer_cuemu.so");
                    if (File.Exists(path)) yield return path;
                }
                break;
        }
    }

    /// <summary>Whether a library can be loaded at all (tests skip what this machine lacks).</summary>
    public static bool IsAvailable(string name)
    {
        foreach (string candidate in Candidates(name))
            if (NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                NativeLibrary.Free(handle);
                return true;
            }
        return false;
    }
}
