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
/// (<see cref="EmulatedCudaDevice"/>). Work goes to one stream in order; calls are made from one
/// thread at a time.
/// </summary>
public abstract unsafe class CudaDevice : IDisposable
{
    public abstract string Name { get; }

    /// <summary>
    /// STEER_CUDA_SYNC=1: synchronise after every kernel and GEMM and check for errors, so a fault
    /// is reported with the launch that caused it (not at the next download).
    /// </summary>
    public bool SyncAfterEachLaunch { get; set; } = Environment.GetEnvironmentVariable("STEER_CUDA_SYNC") == "1";

    public abstract DevicePtr Alloc(long bytes);
    /// <summary>The device's free and total memory in bytes, as cuMemGetInfo reports them (every process's allocations count).</summary>
    public abstract (long Free, long Total) MemoryInfo();
    public abstract void Free(DevicePtr p);
    /// <summary>Synchronous: returns once the stream's earlier work and the copy are done.</summary>
    public abstract void CopyToDevice(DevicePtr destination, void* source, long bytes);
    /// <summary>Synchronous: returns once the stream's earlier work and the copy are done.</summary>
    public abstract void CopyToHost(void* destination, DevicePtr source, long bytes);
    /// <summary>In stream order; source must stay unchanged until the stream has passed the copy.</summary>
    public abstract void CopyToDeviceAsync(DevicePtr destination, void* source, long bytes);
    /// <summary>In stream order; while recording, part of the step's graph (a memcpy node on a GPU), so it copies what the recorded kernels before it wrote.</summary>
    public void CopyOnDevice(DevicePtr destination, DevicePtr source, long bytes) =>
        Record("cuMemcpyDtoDAsync", [destination.Address, source.Address, (ulong)bytes], () => CopyOnDeviceNow(destination, source, bytes));
    protected abstract void CopyOnDeviceNow(DevicePtr destination, DevicePtr source, long bytes);
    public abstract void Zero(DevicePtr destination, long bytes);
    public abstract void Synchronize();

    /// <summary>Page-locked host memory (what an asynchronous copy needs to overlap and to run at full speed).</summary>
    public abstract void* AllocHost(long bytes);
    public abstract void FreeHost(void* p);

    /// <summary>cuLaunchKernel: args[i] points at the i-th parameter's value.</summary>
    protected abstract void LaunchRaw(string kernel, Dim3 grid, Dim3 block, void** args);

    /// <summary>cublasGemmEx, see <see cref="GemmEx"/>.</summary>
    protected abstract void GemmExRaw(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha,
        DevicePtr a, CudaDataType aType, int lda, DevicePtr b, CudaDataType bType, int ldb,
        float beta, DevicePtr c, CudaDataType cType, int ldc);

    /// <summary>
    /// cublasGemmEx: column-major C (m×n) = alpha·op(A)·op(B) + beta·C with op(A) m×k, op(B) k×n,
    /// f32 accumulation.
    /// </summary>
    public void GemmEx(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha,
        DevicePtr a, CudaDataType aType, int lda, DevicePtr b, CudaDataType bType, int ldb,
        float beta, DevicePtr c, CudaDataType cType, int ldc)
    {
        if (_recording is not null)
        {
            _recording.Add(new RecordedOp("cublasGemmEx",
                [(ulong)transa, (ulong)transb, (uint)m, (uint)n, (uint)k, BitConverter.SingleToUInt32Bits(alpha), a.Address, (ulong)aType,
                 (uint)lda, b.Address, (ulong)bType, (uint)ldb, BitConverter.SingleToUInt32Bits(beta), c.Address, (ulong)cType, (uint)ldc],
                () => GemmEx(transa, transb, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c, cType, ldc)));
            return;
        }
        GemmExRaw(transa, transb, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c, cType, ldc);
        Launches++;
        if (SyncAfterEachLaunch) CheckAfter($"cublasGemmEx(m={m}, n={n}, k={k})");
    }

    public void Launch(string kernel, Dim3 grid, Dim3 block, params ReadOnlySpan<KernelArg> args)
    {
        if (_recording is not null)
        {
            KernelArg[] kept = args.ToArray();
            ulong[] shape = [grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z];
            _recording.Add(new RecordedOp(kernel, [.. shape, .. kept.Select(a => a.Bits)], () => Launch(kernel, grid, block, kept)));
            return;
        }
        ulong* values = stackalloc ulong[args.Length];
        void** pointers = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            values[i] = args[i].Bits;
            pointers[i] = &values[i];
        }
        LaunchRaw(kernel, grid, block, pointers);
        Launches++;
        if (SyncAfterEachLaunch) CheckAfter($"kernel {kernel} (grid {grid.X}×{grid.Y}×{grid.Z}, block {block.X}×{block.Y}×{block.Z})");
    }

    List<RecordedOp>? _recording;

    /// <summary>Kernels and GEMMs run (not recorded) on this device since it was opened: one stream, one host thread at a time.</summary>
    public long Launches { get; private set; }

    /// <summary>Whether launches and GEMMs are being recorded (see <see cref="BeginRecording"/>).</summary>
    public bool Recording => _recording is not null;

    /// <summary>
    /// From here until <see cref="EndRecording"/>, kernel launches, GEMMs and <see cref="Record"/>ed
    /// operations are kept, not run: the launch list of a graph. Device-to-device copies are recorded
    /// too; copies from and to the host still run at once, so a recorded step uploads its inputs
    /// before and downloads its results after the graph. A
    /// recording left unfinished (its step threw) is dropped.
    /// </summary>
    public void BeginRecording() => _recording = [];

    public IReadOnlyList<RecordedOp> EndRecording()
    {
        List<RecordedOp> ops = _recording ?? throw new InvalidOperationException($"{Name}: not recording");
        _recording = null;
        return ops;
    }

    /// <summary>An operation on this device's stream that is not a kernel or GEMM (a collective): recorded while recording, else run now.</summary>
    public void Record(string name, ulong[] values, Action run)
    {
        if (_recording is not null) _recording.Add(new RecordedOp(name, values, run));
        else run();
    }

    /// <summary>
    /// A graph of recorded operations, replayable with <see cref="DeviceGraph.Launch"/>. Here the
    /// recording itself, run again in order (what the emulator does); the driver captures the
    /// operations into a CUDA graph.
    /// </summary>
    public virtual DeviceGraph Instantiate(IReadOnlyList<RecordedOp> ops) => new ReplayedGraph(ops);

    void CheckAfter(string launch)
    {
        try { Synchronize(); }
        catch (CudaException e) { throw new CudaException($"{Name}: {launch} failed: {e.Message}"); }
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
    /// <summary>
    /// Ends every collective of the group, waiting or to come, with an error (ncclCommAbort): what
    /// the other ranks need when one rank failed. The group is unusable afterwards. Any thread.
    /// </summary>
    public abstract void Abort();
    public abstract void Dispose();
}
