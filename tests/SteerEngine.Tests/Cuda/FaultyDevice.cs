using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// An emulated device that counts its host-to-device copies and its launches of each kernel and, when
/// asked, fails the n-th launch of one kernel (a rank that breaks mid-forward).
/// </summary>
unsafe class FaultyDevice(int ordinal) : EmulatedCudaDevice(ordinal)
{
    public string? FailKernel { get; set; }
    public int FailAtLaunch { get; set; } = 1;
    /// <summary>The host threads that launched kernels on this device.</summary>
    public HashSet<Thread> LaunchThreads { get; } = new(ReferenceEqualityComparer.Instance);
    public int SyncUploads { get; private set; }
    public int AsyncUploads { get; private set; }
    int _launches;

    public int DeviceCopies { get; private set; }

    /// <summary>Kernel name → launches since the last <see cref="ResetCounts"/>.</summary>
    public Dictionary<string, int> Launches { get; } = [];

    public void ResetCounts()
    {
        SyncUploads = AsyncUploads = DeviceCopies = 0;
        lock (Launches) Launches.Clear();
    }

    public int LaunchesOf(string kernel)
    {
        lock (Launches) return Launches.GetValueOrDefault(kernel);
    }

    protected override void CopyOnDeviceNow(DevicePtr destination, DevicePtr source, long bytes)
    {
        DeviceCopies++;
        base.CopyOnDeviceNow(destination, source, bytes);
    }

    public override void CopyToDevice(DevicePtr destination, void* source, long bytes)
    {
        SyncUploads++;
        base.CopyToDevice(destination, source, bytes);
    }

    public override void CopyToDeviceAsync(DevicePtr destination, void* source, long bytes)
    {
        AsyncUploads++;
        base.CopyToDevice(destination, source, bytes);
    }

    protected override void LaunchRaw(string kernel, Dim3 grid, Dim3 block, void** args)
    {
        lock (LaunchThreads) LaunchThreads.Add(Thread.CurrentThread);
        lock (Launches) Launches[kernel] = Launches.GetValueOrDefault(kernel) + 1;
        if (kernel == FailKernel && ++_launches == FailAtLaunch) throw new CudaException($"{Name}: injected failure of {kernel}");
        base.LaunchRaw(kernel, grid, block, args);
    }
}
