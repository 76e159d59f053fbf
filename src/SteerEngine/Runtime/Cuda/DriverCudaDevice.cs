using System.Text;
using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// A real GPU through the CUDA driver API: the device's primary context (the one NCCL, cuBLAS and
/// the CUDA runtime use; bound to every thread that touches the device), one stream, kernels
/// compiled by NVRTC for its architecture at first use (cached on disk), GEMMs through cuBLAS.
/// Not yet run on hardware (no machine of the project has a GPU); with STEER_CUDA_DRIVER=cuemu it
/// runs on the emulator's driver, which enforces the context rules.
/// </summary>
public sealed unsafe class DriverCudaDevice : CudaDevice
{
    readonly IntPtr _context, _stream, _cublas;
    readonly ulong _cublasWorkspace;
    const nuint CublasWorkspaceBytes = 32 << 20; // what cuBLAS recommends for Hopper
    readonly int _arch;
    readonly List<IntPtr> _modules = [];
    readonly Dictionary<string, IntPtr> _functions = [];
    readonly HashSet<ulong> _live = []; // freed on Dispose: the primary context outlives this object
    static readonly object InitGate = new();
    static bool _initialized;

    public DriverCudaDevice(int ordinal)
    {
        lock (InitGate)
        {
            if (!_initialized) CudaDriverApi.Check(CudaDriverApi.cuInit(0), "cuInit");
            _initialized = true;
        }
        int device, major, minor;
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGet(&device, ordinal), $"cuDeviceGet({ordinal})");
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetAttribute(&major, CudaDriverApi.AttributeComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetAttribute(&minor, CudaDriverApi.AttributeComputeCapabilityMinor, device), "cuDeviceGetAttribute");
        if (major < 8) throw new CudaException($"GPU {ordinal} has compute capability {major}.{minor}; the kernels need bf16 tensor cores (8.0 or newer)");
        _arch = major * 10 + minor;
        byte* name = stackalloc byte[256];
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        Name = $"cuda:{ordinal} ({Encoding.UTF8.GetString(name, new Span<byte>(name, 256).IndexOf((byte)0))}, sm_{_arch})";
        Ordinal = device;
        Arch = _arch;

        IntPtr context, stream, cublas;
        CudaDriverApi.Check(CudaDriverApi.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        _context = context;
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuStreamCreate(&stream, 0), "cuStreamCreate");
        _stream = stream;
        CublasApi.Check(CublasApi.cublasCreate(&cublas), "cublasCreate");
        CublasApi.Check(CublasApi.cublasSetStream(cublas, stream), "cublasSetStream");
        _cublas = cublas;
        // cuBLAS's own workspace from the start: a GEMM captured into a graph then allocates
        // nothing and its workspace stays valid for every replay, and a GEMM picks the same
        // algorithm in a graph as launched directly (the workspace size is part of that choice).
        ulong workspace;
        CudaDriverApi.Check(CudaDriverApi.cuMemAlloc(&workspace, CublasWorkspaceBytes), $"{Name}: cuMemAlloc(cuBLAS workspace)");
        _cublasWorkspace = workspace;
        CublasApi.Check(CublasApi.cublasSetWorkspace(cublas, workspace, CublasWorkspaceBytes), "cublasSetWorkspace");

        foreach ((string file, string source) in KernelSources.Files)
        {
            byte[] cubin = NvrtcCompiler.CachedCubin(file, source, _arch, NvrtcCompiler.DeviceOptions);
            IntPtr module;
            fixed (byte* image = cubin) CudaDriverApi.Check(CudaDriverApi.cuModuleLoadData(&module, image), $"cuModuleLoadData({file})");
            _modules.Add(module);
        }
    }

    public override string Name { get; }
    public int Ordinal { get; }
    /// <summary>Compute capability × 10 (90 = H100).</summary>
    public int Arch { get; }
    public IntPtr Stream => _stream;

    /// <summary>Binds this device's primary context to the calling thread; every call does (cheap), so a device may be driven from any one thread at a time.</summary>
    public void Current() => CudaDriverApi.Check(CudaDriverApi.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    /// <summary>A cuDeviceGetAttribute value of this device.</summary>
    public int Attribute(int attribute)
    {
        int value;
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetAttribute(&value, attribute, Ordinal), $"cuDeviceGetAttribute({attribute})");
        return value;
    }

    /// <summary>Registers per thread and the largest block a kernel can be launched with (cuFuncGetAttribute).</summary>
    public (int Registers, int MaxThreads) KernelLimits(string kernel)
    {
        Current();
        int registers, maxThreads;
        IntPtr f = Function(kernel);
        CudaDriverApi.Check(CudaDriverApi.cuFuncGetAttribute(&registers, CudaDriverApi.FunctionNumRegisters, f), "cuFuncGetAttribute");
        CudaDriverApi.Check(CudaDriverApi.cuFuncGetAttribute(&maxThreads, CudaDriverApi.FunctionMaxThreadsPerBlock, f), "cuFuncGetAttribute");
        return (registers, maxThreads);
    }

    public override DevicePtr Alloc(long bytes)
    {
        Current();
        ulong p;
        CudaDriverApi.Check(CudaDriverApi.cuMemAlloc(&p, (nuint)bytes), $"{Name}: cuMemAlloc({bytes})");
        _live.Add(p);
        return new DevicePtr(p);
    }

    public override (long Free, long Total) MemoryInfo()
    {
        Current();
        nuint free, total;
        CudaDriverApi.Check(CudaDriverApi.cuMemGetInfo(&free, &total), $"{Name}: cuMemGetInfo");
        return ((long)free, (long)total);
    }

    public override void Free(DevicePtr p)
    {
        if (!_live.Remove(p.Address)) return;
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuMemFree(p.Address), "cuMemFree");
    }

    public override void* AllocHost(long bytes)
    {
        Current();
        void* p;
        CudaDriverApi.Check(CudaDriverApi.cuMemAllocHost(&p, (nuint)Math.Max(1, bytes)), $"{Name}: cuMemAllocHost({bytes})");
        return p;
    }

    public override void FreeHost(void* p)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuMemFreeHost(p), "cuMemFreeHost");
    }

    public override void CopyToDevice(DevicePtr destination, void* source, long bytes)
    {
        CopyToDeviceAsync(destination, source, bytes);
        Synchronize();
    }

    public override void CopyToDeviceAsync(DevicePtr destination, void* source, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyHtoDAsync(destination.Address, source, (nuint)bytes, _stream), "cuMemcpyHtoDAsync");
    }

    public override void CopyToHost(void* destination, DevicePtr source, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoHAsync(destination, source.Address, (nuint)bytes, _stream), "cuMemcpyDtoHAsync");
        Synchronize();
    }

    protected override void CopyOnDeviceNow(DevicePtr destination, DevicePtr source, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoDAsync(destination.Address, source.Address, (nuint)bytes, _stream), "cuMemcpyDtoDAsync");
    }

    public override void Zero(DevicePtr destination, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuMemsetD8Async(destination.Address, 0, (nuint)bytes, _stream), "cuMemsetD8Async");
    }

    public override void Synchronize() { Current(); CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(_stream), $"{Name}: cuStreamSynchronize"); }

    IntPtr Function(string kernel)
    {
        if (_functions.TryGetValue(kernel, out IntPtr f)) return f;
        foreach (IntPtr module in _modules)
            if (CudaDriverApi.cuModuleGetFunction(&f, module, kernel) == 0) return _functions[kernel] = f;
        throw new CudaException($"no kernel named {kernel} in kernels/*.cu");
    }

    protected override void LaunchRaw(string kernel, Dim3 grid, Dim3 block, void** args)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuLaunchKernel(Function(kernel), grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, 0, _stream, args, null),
            $"cuLaunchKernel({kernel})");
    }

    protected override void GemmExRaw(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha,
        DevicePtr a, CudaDataType aType, int lda, DevicePtr b, CudaDataType bType, int ldb,
        float beta, DevicePtr c, CudaDataType cType, int ldc)
    {
        Current();
        CublasApi.Check(CublasApi.cublasGemmEx(_cublas, (int)transa, (int)transb, m, n, k, &alpha, a.Address, (int)aType, lda,
            b.Address, (int)bType, ldb, &beta, c.Address, (int)cType, ldc, CublasApi.ComputeF32, CublasApi.GemmDefault), "cublasGemmEx");
    }

    /// <summary>A CUDA graph captured from the recorded operations: stream capture (thread-local mode) around running them, then cuGraphInstantiate.</summary>
    public override DeviceGraph Instantiate(IReadOnlyList<RecordedOp> ops)
    {
        Current();
        return DriverGraph.Capture(this, ops);
    }

    public override void Dispose()
    {
        Current();
        foreach (ulong p in _live) CudaDriverApi.cuMemFree(p);
        _live.Clear();
        foreach (IntPtr m in _modules) CudaDriverApi.cuModuleUnload(m);
        CublasApi.cublasDestroy(_cublas);
        CudaDriverApi.cuMemFree(_cublasWorkspace);
        CudaDriverApi.cuStreamDestroy(_stream);
        CudaDriverApi.cuDevicePrimaryCtxRelease(Ordinal);
    }
}

/// <summary>
/// NCCL communicators for the devices of one process (ncclCommInitAll), each rank on its device's
/// stream in its primary context. A collective is queued behind the rank's earlier kernels on
/// that stream, so nothing is synchronised before it.
/// </summary>
public sealed unsafe class NcclCollectives : CudaCollectives
{
    readonly IntPtr[] _comms;
    readonly DriverCudaDevice[] _devices;
    int _aborted;

    public NcclCollectives(DriverCudaDevice[] devices)
    {
        _devices = devices;
        _comms = new IntPtr[devices.Length];
        int[] ordinals = devices.Select(d => d.Ordinal).ToArray();
        fixed (IntPtr* c = _comms)
        fixed (int* o = ordinals)
            NcclApi.Check(NcclApi.ncclCommInitAll(c, devices.Length, o), "ncclCommInitAll");
    }

    public override int Ranks => _comms.Length;

    public override void AllReduceSum(int rank, DevicePtr send, DevicePtr receive, long count)
    {
        _devices[rank].Current();
        NcclApi.Check(NcclApi.ncclAllReduce(send.Address, receive.Address, (nuint)count, NcclApi.Float32, NcclApi.Sum, _comms[rank], _devices[rank].Stream), "ncclAllReduce");
    }

    public override void AllGather(int rank, DevicePtr send, DevicePtr receive, long count)
    {
        _devices[rank].Current();
        NcclApi.Check(NcclApi.ncclAllGather(send.Address, receive.Address, (nuint)count, NcclApi.Float32, _comms[rank], _devices[rank].Stream), "ncclAllGather");
    }

    public override void Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) == 1) return;
        for (int r = 0; r < _comms.Length; r++)
        {
            _devices[r].Current();
            NcclApi.ncclCommAbort(_comms[r]);
        }
    }

    public override void Dispose()
    {
        if (Volatile.Read(ref _aborted) == 1) return; // ncclCommAbort freed them
        foreach (IntPtr c in _comms) NcclApi.ncclCommDestroy(c);
    }
}
