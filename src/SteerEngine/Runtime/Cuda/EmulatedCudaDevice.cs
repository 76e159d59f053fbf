using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// A device emulated by native/cuemu: the same kernels/*.cu, compiled for the CPU. Launches and
/// copies run at once on the calling thread; allocations are bounds-checked (a kernel access past
/// an allocation's end fails its launch). Not sealed: tests derive devices that fail on purpose.
/// Its memory is host memory mapped on demand, so the device's size is a number it reports, not a limit:
/// <see cref="TotalBytes"/> minus what it has allocated is its free memory.
/// </summary>
public unsafe class EmulatedCudaDevice(int ordinal) : CudaDevice
{
    readonly Dictionary<ulong, long> _live = []; // address → bytes; freed on Dispose, as destroying a CUDA context frees its memory
    long _allocated;

    /// <summary>
    /// The size an emulated device reports unless told otherwise: CUEMU_DEVICE_BYTES (also what the emulator's
    /// driver answers cuMemGetInfo with), else 80 GiB, an H100's.
    /// </summary>
    public static long DefaultTotalBytes =>
        long.TryParse(Environment.GetEnvironmentVariable("CUEMU_DEVICE_BYTES"), out long bytes) && bytes > 0 ? bytes : 80L << 30;

    /// <summary>The memory this device reports as its total (<see cref="MemoryInfo"/>).</summary>
    public long TotalBytes { get; set; } = DefaultTotalBytes;

    public override (long Free, long Total) MemoryInfo() => (Math.Max(0, TotalBytes - _allocated), TotalBytes);

    public override string Name => $"cuda-emu:{ordinal}";

    public static bool IsAvailable => CudaLibraries.IsAvailable("steer_cuemu");

    /// <summary>Names of the kernels the emulator was built with.</summary>
    public static IReadOnlyList<string> KernelNames()
    {
        var names = new List<string>();
        for (int i = 0, n = CuemuApi.cuemu_kernel_count(); i < n; i++)
            names.Add(System.Runtime.InteropServices.Marshal.PtrToStringUTF8((IntPtr)CuemuApi.cuemu_kernel_name(i))!);
        return names;
    }

    public override DevicePtr Alloc(long bytes)
    {
        void* p = CuemuApi.cuemu_malloc((nuint)bytes);
        if (p == null) throw new OutOfMemoryException($"{Name}: cannot allocate {bytes} bytes");
        _live.Add((ulong)p, bytes);
        _allocated += bytes;
        return new DevicePtr((ulong)p);
    }

    public override void Free(DevicePtr p)
    {
        if (!_live.Remove(p.Address, out long bytes)) return;
        _allocated -= bytes;
        CuemuApi.cuemu_free((void*)p.Address);
    }
    public override void CopyToDevice(DevicePtr destination, void* source, long bytes) => Buffer.MemoryCopy(source, (void*)destination.Address, bytes, bytes);
    public override void CopyToDeviceAsync(DevicePtr destination, void* source, long bytes) => CopyToDevice(destination, source, bytes);
    public override void* AllocHost(long bytes) => System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)Math.Max(1, bytes), 64);
    public override void FreeHost(void* p) => System.Runtime.InteropServices.NativeMemory.AlignedFree(p);
    public override void CopyToHost(void* destination, DevicePtr source, long bytes) => Buffer.MemoryCopy((void*)source.Address, destination, bytes, bytes);
    protected override void CopyOnDeviceNow(DevicePtr destination, DevicePtr source, long bytes) => Buffer.MemoryCopy((void*)source.Address, (void*)destination.Address, bytes, bytes);
    public override void Zero(DevicePtr destination, long bytes) => System.Runtime.InteropServices.NativeMemory.Clear((void*)destination.Address, (nuint)bytes);
    public override void Synchronize() { }

    protected override void LaunchRaw(string kernel, Dim3 grid, Dim3 block, void** args)
    {
        if (CuemuApi.cuemu_launch(kernel, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, 0, args) != 0)
            throw new CudaException($"{Name}: launch of {kernel} failed: {CuemuApi.LastError}");
    }

    protected override void GemmExRaw(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha,
        DevicePtr a, CudaDataType aType, int lda, DevicePtr b, CudaDataType bType, int ldb,
        float beta, DevicePtr c, CudaDataType cType, int ldc)
    {
        int status = CuemuApi.cuemu_gemm_ex((int)transa, (int)transb, m, n, k, &alpha, a.Address, (int)aType, lda,
            b.Address, (int)bType, ldb, &beta, c.Address, (int)cType, ldc, CublasApi.ComputeF32);
        CublasApi.Check(status, $"{Name}: cublasGemmEx(m={m}, n={n}, k={k}, lda={lda}, ldb={ldb}, ldc={ldc})");
    }

    public override void Dispose()
    {
        foreach (ulong p in _live.Keys) CuemuApi.cuemu_free((void*)p);
        _live.Clear();
        _allocated = 0;
        GC.SuppressFinalize(this);
    }
}

/// <summary>NCCL's collectives across emulated devices (native/cuemu/collectives.cpp).</summary>
public sealed unsafe class EmulatedCollectives : CudaCollectives
{
    readonly IntPtr[] _comms;

    public EmulatedCollectives(int ranks)
    {
        _comms = new IntPtr[ranks];
        fixed (IntPtr* p = _comms) NcclCheck(CuemuApi.cuemu_comm_init_all(p, ranks), "ncclCommInitAll");
    }

    public override int Ranks => _comms.Length;

    public override void AllReduceSum(int rank, DevicePtr send, DevicePtr receive, long count) =>
        NcclCheck(CuemuApi.cuemu_all_reduce(send.Address, receive.Address, (nuint)count, NcclApi.Float32, NcclApi.Sum, _comms[rank]), "ncclAllReduce");

    public override void AllGather(int rank, DevicePtr send, DevicePtr receive, long count) =>
        NcclCheck(CuemuApi.cuemu_all_gather(send.Address, receive.Address, (nuint)count, NcclApi.Float32, _comms[rank]), "ncclAllGather");

    static void NcclCheck(int result, string call)
    {
        if (result != 0) throw new CudaException($"{call} (emulated) failed: ncclResult {result}");
    }

    public override void Abort()
    {
        foreach (IntPtr c in _comms) CuemuApi.cuemu_comm_abort(c);
    }

    public override void Dispose()
    {
        foreach (IntPtr c in _comms) CuemuApi.cuemu_comm_destroy(c);
    }
}
