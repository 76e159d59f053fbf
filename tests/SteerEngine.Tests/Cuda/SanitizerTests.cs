using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The emulator's checks of what compute-sanitizer's memcheck reports on a GPU, each shown to fire
/// on a launch that breaks it on purpose. Every kernel test runs under them.
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
}
