using System.Text;
using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// A real GPU through the CUDA driver API: its own context and stream, kernels compiled by NVRTC
/// for its architecture at first use (cached on disk), GEMMs through cuBLAS. Not yet run on
/// hardware (no machine of the project has a GPU); the emulated device runs the same launch code.
/// </summary>
public sealed unsafe class DriverCudaDevice : CudaDevice
{
    readonly IntPtr _context, _stream, _cublas;
    readonly int _arch;
    readonly List<IntPtr> _modules = [];
    readonly Dictionary<string, IntPtr> _functions = [];
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

        IntPtr context, stream, cublas;
        CudaDriverApi.Check(CudaDriverApi.cuCtxCreate(&context, 0, device), "cuCtxCreate");
        _context = context;
        CudaDriverApi.Check(CudaDriverApi.cuStreamCreate(&stream, 0), "cuStreamCreate");
        _stream = stream;
        CublasApi.Check(CublasApi.cublasCreate(&cublas), "cublasCreate");
        CublasApi.Check(CublasApi.cublasSetStream(cublas, stream), "cublasSetStream");
        _cublas = cublas;

        foreach ((string file, string source) in KernelSources.Files)
        {
            byte[] cubin = NvrtcCompiler.CachedCubin(file, source, _arch);
            IntPtr module;
            fixed (byte* image = cubin) CudaDriverApi.Check(CudaDriverApi.cuModuleLoadData(&module, image), $"cuModuleLoadData({file})");
            _modules.Add(module);
        }
    }

    public override string Name { get; }
    public int Ordinal { get; }
    public IntPtr Stream => _stream;

    /// <summary>Every call binds this device's context to the calling thread (cheap), so a device may be driven from any one thread at a time.</summary>
    void Current() => CudaDriverApi.Check(CudaDriverApi.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    public override DevicePtr Alloc(long bytes)
    {
        Current();
        ulong p;
        CudaDriverApi.Check(CudaDriverApi.cuMemAlloc(&p, (nuint)bytes), $"cuMemAlloc({bytes})");
        return new DevicePtr(p);
    }

    public override void Free(DevicePtr p) { Current(); CudaDriverApi.Check(CudaDriverApi.cuMemFree(p.Address), "cuMemFree"); }

    public override void CopyToDevice(DevicePtr destination, void* source, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyHtoD(destination.Address, source, (nuint)bytes), "cuMemcpyHtoD");
    }

    public override void CopyToHost(void* destination, DevicePtr source, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoH(destination, source.Address, (nuint)bytes), "cuMemcpyDtoH");
    }

    public override void CopyOnDevice(DevicePtr destination, DevicePtr source, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoD(destination.Address, source.Address, (nuint)bytes), "cuMemcpyDtoD");
    }

    public override void Zero(DevicePtr destination, long bytes)
    {
        Current();
        CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        CudaDriverApi.Check(CudaDriverApi.cuMemsetD8(destination.Address, 0, (nuint)bytes), "cuMemsetD8");
    }

    public override void Synchronize() { Current(); CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(_stream), "cuStreamSynchronize"); }

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

    public override void GemmEx(GemmOp transa, GemmOp transb, int m, int n, int k, float alpha,
        DevicePtr a, CudaDataType aType, int lda, DevicePtr b, CudaDataType bType, int ldb,
        float beta, DevicePtr c, CudaDataType cType, int ldc)
    {
        Current();
        CublasApi.Check(CublasApi.cublasGemmEx(_cublas, (int)transa, (int)transb, m, n, k, &alpha, a.Address, (int)aType, lda,
            b.Address, (int)bType, ldb, &beta, c.Address, (int)cType, ldc, CublasApi.ComputeF32, CublasApi.GemmDefault), "cublasGemmEx");
    }

    public override void Dispose()
    {
        Current();
        foreach (IntPtr m in _modules) CudaDriverApi.cuModuleUnload(m);
        CublasApi.cublasDestroy(_cublas);
        CudaDriverApi.cuStreamDestroy(_stream);
        CudaDriverApi.cuCtxDestroy(_context);
    }
}

/// <summary>NCCL communicators for the devices of one process (ncclCommInitAll), each rank on its device's stream.</summary>
public sealed unsafe class NcclCollectives : CudaCollectives
{
    readonly IntPtr[] _comms;
    readonly DriverCudaDevice[] _devices;

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
        _devices[rank].Synchronize(); // binds the context
        NcclApi.Check(NcclApi.ncclAllReduce(send.Address, receive.Address, (nuint)count, NcclApi.Float32, NcclApi.Sum, _comms[rank], _devices[rank].Stream), "ncclAllReduce");
    }

    public override void AllGather(int rank, DevicePtr send, DevicePtr receive, long count)
    {
        _devices[rank].Synchronize();
        NcclApi.Check(NcclApi.ncclAllGather(send.Address, receive.Address, (nuint)count, NcclApi.Float32, _comms[rank], _devices[rank].Stream), "ncclAllGather");
    }

    public override void Dispose()
    {
        foreach (IntPtr c in _comms) NcclApi.ncclCommDestroy(c);
    }
}
