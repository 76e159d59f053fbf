using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The emulator's checks of what compute-sanitizer reports on a GPU (memcheck: out-of-bounds global
/// and shared accesses; racecheck: shared-memory races between barriers; initcheck: reads of
/// unwritten shared memory), each shown to fire on a kernel that breaks it on purpose
/// (native/cuemu/broken/shared_checks.cu). Every kernel test runs under them.
/// </summary>
[TestFixture]
public class SanitizerTests
{
    [Test]
    public void A_read_past_a_device_allocation_fails_the_launch_naming_kernel_block_and_allocation()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        const int vocab = 7, hidden = 64;
        DevicePtr table = d.AllocUpload<ushort>(new ushort[vocab * hidden]), x = d.Alloc(3 * hidden * 4);
        // Row 2's token id is the vocabulary size: the row just past the table's end.
        Assert.That(() => d.Launch("embedding_gather", new Dim3(3), new Dim3(32), table, d.AllocUpload<int>([0, 6, vocab]), x, hidden),
            Throws.TypeOf<CudaException>().With.Message.Contains("embedding_gather: block (2,0,0) thread (0,0,0): out-of-bounds global access")
                .And.Message.Contains("0 bytes past the end of the 896-byte device allocation"));
        // The device is usable after the fault.
        d.Launch("embedding_gather", new Dim3(2), new Dim3(32), table, d.AllocUpload<int>([0, 6]), x, hidden);
    }

    [Test]
    public void A_write_past_a_device_allocation_fails_the_launch()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        const int rows = 3, hidden = 40;
        DevicePtr table = d.AllocUpload<ushort>(new ushort[rows * hidden]), x = d.Alloc(2 * hidden * 4); // room for 2 rows, 3 gathered
        Assert.That(() => d.Launch("embedding_gather", new Dim3(3), new Dim3(32), table, d.AllocUpload<int>([0, 1, 2]), x, hidden),
            Throws.TypeOf<CudaException>().With.Message.Contains("out-of-bounds global access").And.Message.Contains("320-byte device allocation"));
    }

    [Test]
    public void A_null_device_pointer_fails_the_launch()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        Assert.That(() => d.Launch("swiglu", new Dim3(1), new Dim3(32), DevicePtr.Null, d.Alloc(64), 8),
            Throws.TypeOf<CudaException>().With.Message.Contains("swiglu: block (0,0,0) thread (0,0,0): access through a null device pointer"));
    }

    static float[] Ramp(int n) => Enumerable.Range(0, n).Select(i => (float)i).ToArray();

    [Test]
    public void Shared_memory_with_a_barrier_between_write_and_read_passes()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        DevicePtr output = d.Alloc(64 * 4);
        d.Launch("shared_neighbour_sum", new Dim3(1), new Dim3(64), d.AllocUpload<float>(Ramp(64)), output, 1);
        var got = new float[64];
        d.Download<float>(output, got);
        Assert.That(got, Is.EqualTo(Enumerable.Range(0, 64).Select(i => (float)(i + Math.Max(i - 1, 0))).ToArray()));
    }

    [Test]
    public void A_shared_read_of_another_threads_write_without_a_barrier_is_a_race()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        Assert.That(() => d.Launch("shared_neighbour_sum", new Dim3(1), new Dim3(64), d.AllocUpload<float>(Ramp(64)), d.Alloc(64 * 4), 0),
            Throws.TypeOf<CudaException>().With.Message.Contains("shared_neighbour_sum: cuemu: race (read after another thread's write, no barrier between) on shared s["));
    }

    [Test]
    public void A_shared_write_past_the_array_is_out_of_bounds()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        d.Launch("shared_write_past_end", new Dim3(1), new Dim3(64), d.Alloc(64 * 4), 0);
        Assert.That(() => d.Launch("shared_write_past_end", new Dim3(1), new Dim3(64), d.Alloc(64 * 4), 1),
            Throws.TypeOf<CudaException>().With.Message.Contains("out-of-bounds access to shared s[64] by thread (63,0,0) of block (0,0,0)"));
    }

    [Test]
    public void A_shared_read_of_what_no_thread_of_the_block_wrote_is_uninitialised()
    {
        using EmulatedCudaDevice d = Emulator.Device();
        // Two blocks: the second must not see the first one's values as written.
        Assert.That(() => d.Launch("shared_read_unwritten", new Dim3(2), new Dim3(64), d.Alloc(64 * 4)),
            Throws.TypeOf<CudaException>().With.Message.Contains("uninitialised read of shared s[1] by thread (1,0,0) of block (0,0,0)"));
    }
}
