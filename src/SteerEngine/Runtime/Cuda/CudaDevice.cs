namespace SteerEngine.Runtime.Cuda;

/// <summary>An address in a device's memory (on the emulator, a host address).</summary>
public readonly record struct DevicePtr(ulong Address)
{
    public static readonly DevicePtr Null = new(0);
    public bool IsNull => Address == 0;
    public static DevicePtr operator +(DevicePtr p, long bytes) => new(p.Address + (ulong)bytes);
}

public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1);

/// <summary>One kernel argument as cuLaunchKernel receives it: the bits of a value, read by the kernel at its size.</summary>
public readonly struct KernelArg
{
    public readonly ulong Bits;
    KernelArg(ulong bits) => Bits = bits;
    public static implicit operator KernelArg(DevicePtr p) => new(p.Address);
    public static implicit operator KernelArg(int v) => new((uint)v);
    public static implicit operator KernelArg(float v) => new(BitConverter.SingleToUInt32Bits(v));
}

/// <summary>cublasOperation_t.</summary>
public enum GemmOp { N = 0, T = 1 }

/// <summary>cudaDataType_t values the backend uses.</summary>
public enum CudaDataType { F32 = 0, BF16 = 14 }

/// <summary>
/// The seam between the backend's launch code and what runs it: the CUDA driver with NVRTC-compiled
/// kernels and cuBLAS (<see cref="DriverCudaDevice"/>), or native/cuemu on the CPU
/// (<see cref="EmulatedCudaDevice"/>). Calls are made from the one thread that drives this device.
/// </summary>
public abstract unsafe class CudaDevice : IDisposable
{
    public abstract string Name { get; }

    public abstract DevicePtr Alloc(long bytes);
    public abstract void Free(DevicePtr p);
    public abstract void CopyToDevice(DevicePtr destination, void* source, long bytes);
    public abstract void CopyToHost(void* destination, DevicePtr source, long bytes);
    public abstract void CopyOnDevice(DevicePtr destination, DevicePtr source, long bytes);
    public abstract void Zero(DevicePtr destination, long bytes);
    public abstract void Synchronize();

    /// <summary>cuLaunchKernel: args[i] points at the i-th parameter's value.</summary>
    protected abstract void LaunchRaw(string kernel, Dim3 grid, Dim3 block, void** args);

    /// <summary>
    /// cublasGemmEx: column-major C (m×n) = alpha·op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n,
    /// f32 accumulation.
    /// </summary>
    public abstract void GemmEx(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha,
        DevicePtr a, CudaDataType aType, int lda, DevicePtr b, CudaDataType bType, int ldb,
        float beta, DevicePtr c, CudaDataType cType, int ldc);

    public void Launch(string kernel, Dim3 grid, Dim3 block, params ReadOnlySpan<KernelArg> args)
    {
        ulong* values = stackalloc ulong[args.Length];
        void** pointers = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            values[i] = args[i].Bits;
            pointers[i] = &values[i];
        }
        LaunchRaw(kernel, grid, block, pointers);
    }

    public void Upload<T>(DevicePtr destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        fixed (T* p = source) CopyToDevice(destination, p, (long)source.Length * sizeof(T));
    }

    public void Download<T>(DevicePtr source, Span<T> destination) where T : unmanaged
    {
        fixed (T* p = destination) CopyToHost(p, source, (long)destination.Length * sizeof(T));
    }

    public DevicePtr AllocUpload<T>(ReadOnlySpan<T> source) where T : unmanaged
    {
        DevicePtr p = Alloc(Math.Max(1, (long)source.Length * sizeof(T)));
        Upload(p, source);
        return p;
    }

    public abstract void Dispose();
}

/// <summary>All-reduce and all-gather across the ranks of a tensor-parallel group (NCCL or emulated).</summary>
public abstract class CudaCollectives : IDisposable
{
    public abstract int Ranks { get; }
    /// <summary>recv (count) f32 = Σ over ranks of send (count); recv may equal send.</summary>
    public abstract void AllReduceSum(int rank, DevicePtr send, DevicePtr receive, long count);
    /// <summary>recv (ranks, count) f32 = every rank's send (count), in rank order.</summary>
    public abstract void AllGather(int rank, DevicePtr send, DevicePtr receive, long count);
    public abstract void Dispose();
}
