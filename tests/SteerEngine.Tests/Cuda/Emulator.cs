using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>The emulated device for kernel tests, or the test is skipped when native/cuemu is not built.</summary>
static class Emulator
{
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
