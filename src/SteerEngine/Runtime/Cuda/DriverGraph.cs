using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// A CUDA graph on a real GPU: the recorded operations run once under stream capture
/// (cuStreamBeginCapture / cuStreamEndCapture), instantiated (cuGraphInstantiateWithFlags), and
/// launched as one (cuGraphLaunch) on the device's stream. Not yet run on hardware; on the
/// emulator's driver (STEER_CUDA_DRIVER=cuemu) capture records the launches and replays them.
/// </summary>
sealed unsafe class DriverGraph : DeviceGraph
{
    readonly DriverCudaDevice _device;
    IntPtr _graph, _executable;

    DriverGraph(DriverCudaDevice device, IReadOnlyList<RecordedOp> ops, IntPtr graph, IntPtr executable) : base(ops)
    {
        _device = device;
        _graph = graph;
        _executable = executable;
    }

    public static DriverGraph Capture(DriverCudaDevice device, IReadOnlyList<RecordedOp> ops)
    {
        CudaDriverApi.Check(CudaDriverApi.cuStreamBeginCapture(device.Stream, CudaDriverApi.StreamCaptureModeThreadLocal), $"{device.Name}: cuStreamBeginCapture");
        IntPtr graph = IntPtr.Zero, executable;
        try
        {
            foreach (RecordedOp op in ops) op.Run();
        }
        catch
        {
            // End the capture so the stream is usable again; the partial graph is dropped.
            if (CudaDriverApi.cuStreamEndCapture(device.Stream, &graph) == 0 && graph != IntPtr.Zero) CudaDriverApi.cuGraphDestroy(graph);
            throw;
        }
        CudaDriverApi.Check(CudaDriverApi.cuStreamEndCapture(device.Stream, &graph), $"{device.Name}: cuStreamEndCapture");
        int result = CudaDriverApi.cuGraphInstantiateWithFlags(&executable, graph, 0);
        if (result != 0)
        {
            CudaDriverApi.cuGraphDestroy(graph);
            CudaDriverApi.Check(result, $"{device.Name}: cuGraphInstantiateWithFlags");
        }
        return new DriverGraph(device, ops, graph, executable);
    }

    public override void Launch()
    {
        _device.Current();
        CudaDriverApi.Check(CudaDriverApi.cuGraphLaunch(_executable, _device.Stream), $"{_device.Name}: cuGraphLaunch");
    }

    public override void Dispose()
    {
        if (_executable == IntPtr.Zero) return;
        _device.Current();
        CudaDriverApi.cuGraphExecDestroy(_executable);
        CudaDriverApi.cuGraphDestroy(_graph);
        _executable = _graph = IntPtr.Zero;
        base.Dispose();
    }
}
