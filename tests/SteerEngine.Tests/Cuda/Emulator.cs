using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The devices the CUDA tests run on. The kernel and GEMM tests take theirs from
/// <see cref="UnderTest"/>: the emulator, or with STEER_TEST_DEVICE=driver GPU 0 through the driver
/// (how <c>./build.sh gpu-check</c> runs them on a real GPU).
/// </summary>
static class Emulator
{
    public static CudaDevice UnderTest()
    {
        if (Environment.GetEnvironmentVariable("STEER_TEST_DEVICE") != "driver") return Device();
        if (!NvrtcCompiler.IsAvailable) Assert.Ignore("libnvrtc cannot be loaded");
        return new DriverCudaDevice(0);
    }

    /// <summary>The model in <paramref name="dir"/> on <paramref name="tp"/> emulated devices.</summary>
    public static CudaTransformer Model(string dir, int tp = 1)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        return CudaTransformer.Load(dir, CudaPlatform.Emulated, tp);
    }

    public static EmulatedCudaDevice Device()
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        return new EmulatedCudaDevice(0);
    }

    /// <summary>
    /// Points the driver, cuBLAS and NCCL at native/cuemu (STEER_CUDA_DRIVER=cuemu) so the driver
    /// path runs; skips the test when the emulator or NVRTC (which the driver path compiles with) is missing.
    /// </summary>
    public static void UseEmulatedDriver()
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        if (!NvrtcCompiler.IsAvailable) Assert.Ignore("libnvrtc cannot be loaded (./build.sh test installs Debian's libnvrtc11.2)");
        Environment.SetEnvironmentVariable("STEER_CUDA_DRIVER", "cuemu");
    }
}
