using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The driver path (DriverCudaDevice, NcclCollectives) on the emulator's driver, cuBLAS and NCCL
/// entry points, which keep the driver's rules: a current context on every calling thread, NCCL in
/// the primary contexts, kernel faults reported late unless STEER_CUDA_SYNC asks for them at once.
/// </summary>
[TestFixture]
public class DriverOnEmulatorTests
{
    [SetUp] public void UseEmulatedDriver() => Emulator.UseEmulatedDriver();

    [Test]
    public void A_device_made_on_one_thread_works_from_another()
    {
        using var d = new DriverCudaDevice(0);
        Assert.That(d.Name, Does.Contain("sm_90"));
        float[] x = [1f, -2f, 3f, 4f], w = [1f, 1f, 1f, 1f];
        DevicePtr px = d.AllocUpload<float>(x), pw = d.AllocUpload<float>(w);
        var got = new float[4];
        var worker = new Thread(() =>
        {
            // A fresh thread has no current context: every call must bind the device's own.
            DevicePtr y = d.Alloc(16);
            d.Launch("rmsnorm", new Dim3(1), new Dim3(32), px, pw, y, DevicePtr.Null, 4, 1e-5f);
            d.Download<float>(y, got);
        });
        worker.Start();
        worker.Join();
        float rms = MathF.Sqrt((1 + 4 + 9 + 16) / 4f + 1e-5f);
        Assert.That(got, Is.EqualTo(x.Select(v => v / rms).ToArray()).Within(1e-5f));
    }

    [Test]
    public void Memory_info_reports_the_device_size_less_its_own_allocations()
    {
        using var d0 = new DriverCudaDevice(0);
        using var d1 = new DriverCudaDevice(1);
        var (free0, total0) = d0.MemoryInfo();
        var (free1, total1) = d1.MemoryInfo();
        Assert.That(total0, Is.EqualTo(EmulatedCudaDevice.DefaultTotalBytes));
        Assert.That(total1, Is.EqualTo(total0));
        Assert.That(free0, Is.LessThanOrEqualTo(total0 - (32L << 20)), "the cuBLAS workspace is allocated at open");
        DevicePtr p = d0.Alloc(3L << 20);
        Assert.That(d0.MemoryInfo(), Is.EqualTo((free0 - (3L << 20), total0)));
        Assert.That(d1.MemoryInfo(), Is.EqualTo((free1, total1)), "another device's allocation is not this one's");
        d0.Free(p);
        Assert.That(d0.MemoryInfo(), Is.EqualTo((free0, total0)));
    }

    [Test]
    public void Nccl_all_reduce_runs_on_the_devices_streams_in_their_primary_contexts()
    {
        using var d0 = new DriverCudaDevice(0);
        using var d1 = new DriverCudaDevice(1);
        using var nccl = new NcclCollectives([d0, d1]);
        DevicePtr a = d0.AllocUpload<float>([1f, 2f, 3f]), b = d1.AllocUpload<float>([10f, 20f, 30f]);
        var threads = new[] { (d0, a, 0), (d1, b, 1) }.Select(t => new Thread(() => nccl.AllReduceSum(t.Item3, t.Item2, t.Item2, 3))).ToArray();
        foreach (Thread t in threads) t.Start();
        foreach (Thread t in threads) t.Join();
        var r0 = new float[3];
        var r1 = new float[3];
        d0.Download<float>(a, r0);
        d1.Download<float>(b, r1);
        Assert.That(r0, Is.EqualTo(new[] { 11f, 22f, 33f }));
        Assert.That(r1, Is.EqualTo(r0));
    }

    [Test]
    public void A_kernel_fault_surfaces_at_the_next_sync_and_with_STEER_CUDA_SYNC_at_its_launch()
    {
        const int vocab = 7, hidden = 64;
        void Gather(DriverCudaDevice d)
        {
            DevicePtr table = d.AllocUpload<ushort>(new ushort[vocab * hidden]), x = d.Alloc(hidden * 4);
            // Token id = vocab: the row just past the table's end.
            d.Launch("embedding_gather", new Dim3(1), new Dim3(32), table, d.AllocUpload<int>([vocab]), x, hidden);
            d.Download<float>(x, new float[hidden]);
        }

        using (var late = new DriverCudaDevice(0))
            Assert.That(() => Gather(late), Throws.TypeOf<CudaException>()
                .With.Message.StartsWith("cuMemcpyDtoHAsync failed: CUDA error 700").And.Message.Contains("past the end of the 896-byte device allocation"));
        using (var early = new DriverCudaDevice(0) { SyncAfterEachLaunch = true })
            Assert.That(() => Gather(early), Throws.TypeOf<CudaException>()
                .With.Message.Contains("kernel embedding_gather (grid 1×1×1, block 32×1×1) failed").And.Message.Contains("CUDA error 700"));
    }
}
