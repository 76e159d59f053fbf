using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Training;

/// <summary>What <c>steer train-bipo --backend</c> names: where BiPO's passes run.</summary>
public static class BipoBackends
{
    /// <param name="backend">cpu, cuda (GPUs 0..tp·dp−1 through the driver) or cuda-emu (native/cuemu)</param>
    /// <param name="model">the CPU model (the cpu backend runs on it)</param>
    /// <param name="kernels">the cpu backend's weight products</param>
    /// <param name="tensorParallel">devices per replica (cuda, cuda-emu)</param>
    /// <param name="dataParallel">replicas, each a share of every batch (cuda, cuda-emu)</param>
    public static IBipoBackend Create(string backend, Transformer model, string modelDir, CpuKernelChoice kernels,
        int tensorParallel = 1, int dataParallel = 1)
    {
        if (tensorParallel < 1) throw new ArgumentException($"--tp {tensorParallel}: tensor parallelism must be at least 1");
        if (dataParallel < 1) throw new ArgumentException($"--dp {dataParallel}: data parallelism must be at least 1");
        switch (backend)
        {
            case "cpu":
                if (tensorParallel != 1 || dataParallel != 1)
                    throw new ArgumentException("the cpu backend runs on one process's threads (use --tp 1 --dp 1)");
                return new CpuBipoBackend(model, kernels);
            case "cuda":
                Backends.RequireDriver();
                return CudaBipoBackend.Load(modelDir, CudaPlatform.Driver, tensorParallel, dataParallel);
            case "cuda-emu":
                return CudaBipoBackend.Load(modelDir, CudaPlatform.Emulated, tensorParallel, dataParallel);
            default:
                throw new ArgumentException($"backend '{backend}' is not one of {string.Join(", ", Backends.Names)}");
        }
    }
}
