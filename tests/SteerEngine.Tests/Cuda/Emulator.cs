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
}
