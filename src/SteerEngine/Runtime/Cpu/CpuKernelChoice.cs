namespace SteerEngine.Runtime.Cpu;

/// <summary>Which kernels run the CPU forward pass.</summary>
public enum CpuKernelChoice
{
    /// <summary>Native when libsteer_cpu loads, managed otherwise.</summary>
    Auto,
    /// <summary>libsteer_cpu: AVX512_BF16 / AVX-512 / AVX2 with packed bf16 weights.</summary>
    Native,
    /// <summary>The same packed-bf16 kernels in C# (Vector512 or Vector256 / TensorPrimitives).</summary>
    Managed,
    /// <summary>The exact f32 reference path: weights widened exactly, activations never rounded. The oracle-checked path.</summary>
    Exact,
}

public static class CpuKernels
{
    public static CpuKernelChoice Parse(string s) => s.ToLowerInvariant() switch
    {
        "auto" => CpuKernelChoice.Auto,
        "native" => CpuKernelChoice.Native,
        "managed" => CpuKernelChoice.Managed,
        "exact" => CpuKernelChoice.Exact,
        _ => throw new ArgumentException($"--kernels '{s}' is not one of auto, native, managed, exact"),
    };

    /// <summary>The fast kernel set for a choice, or null for the exact path.</summary>
    public static ICpuKernels? Create(CpuKernelChoice choice) => choice switch
    {
        CpuKernelChoice.Exact => null,
        CpuKernelChoice.Managed => new ManagedCpuKernels(),
        CpuKernelChoice.Native => new NativeCpuKernels(),
        _ => NativeCpu.IsAvailable ? new NativeCpuKernels() : new ManagedCpuKernels(),
    };
}
