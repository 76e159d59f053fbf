using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime;

/// <summary>The names <c>--backend</c> accepts and the model each one loads.</summary>
public static class Backends
{
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda", "cuda-emu"];

    /// <param name="backend">cpu (default), cuda (GPUs 0..tp-1 through the driver), cuda-emu (the CUDA backend on native/cuemu)</param>
    /// <param name="tensorParallel">devices to split the model over (cuda, cuda-emu)</param>
    /// <param name="kernels">the cpu backend's kernels (exact by default here: the backend the CUDA path is checked against)</param>
    /// <summary>Refuses <c>--backend cuda</c> with one line when the NVIDIA driver cannot be loaded here.</summary>
    public static void RequireDriver()
    {
        if (!CudaLibraries.IsAvailable("cuda"))
            throw new ArgumentException("--backend cuda: no NVIDIA driver here (libcuda.so.1 cannot be loaded); --backend cuda-emu runs the same path on the CPU emulator");
    }

    public static IForwardModel Create(string backend, string modelDir, int tensorParallel = 1, CpuKernelChoice kernels = CpuKernelChoice.Exact)
    {
        if (tensorParallel < 1) throw new ArgumentException($"tensor parallelism {tensorParallel} must be at least 1");
        switch (backend)
        {
            case "cpu":
                if (tensorParallel != 1) throw new ArgumentException("the cpu backend has no tensor parallelism (use --tp 1)");
                return Transformer.Load(modelDir, kernels);
            case "cuda":
                RequireDriver();
                return CudaTransformer.Load(modelDir, CudaPlatform.Driver, tensorParallel);
            case "cuda-emu":
                return CudaTransformer.Load(modelDir, CudaPlatform.Emulated, tensorParallel);
            default:
                throw new ArgumentException($"backend '{backend}' is not one of {string.Join(", ", Names)}");
        }
    }
}
