using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// CUDA graphs on the driver path (DriverCudaDevice.Instantiate: stream capture, instantiate,
/// launch) on the emulator's driver, which keeps the rules of capture: work queued on a capturing
/// stream does not run until the graph is launched, and a synchronisation inside a capture fails.
/// </summary>
[TestFixture]
public class DriverGraphTests
{
    [SetUp] public void UseEmulatedDriver() => Emulator.UseEmulatedDriver();

    [Test]
    public void A_captured_graph_runs_only_when_launched_and_reads_its_inputs_then()
    {
        using var d = new DriverCudaDevice(0);
        const int Rows = 3, H = 40, Out = 24;
        var rng = new Random(4);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        DevicePtr x = d.Alloc(Rows * H * 4), norm = d.AllocUpload<float>(Random(H)), xn = d.Alloc(Rows * H * 2), y = d.Alloc(Rows * Out * 4);
        DevicePtr w = d.AllocUpload<ushort>(Random(Out * H).Select(DeviceWeights.ToBf16).ToArray());
        void Step()
        {
            d.Launch("rmsnorm", new Dim3(Rows), new Dim3(32), x, norm, DevicePtr.Null, xn, H, 1e-5f);
            Linear.Forward(d, xn, w, y, Rows, Out, H);
        }
        float[] Direct(float[] input)
        {
            d.Upload<float>(x, input);
            Step();
            var result = new float[Rows * Out];
            d.Download<float>(y, result);
            return result;
        }

        d.BeginRecording();
        Step();
        IReadOnlyList<RecordedOp> ops = d.EndRecording();
        Assert.That(ops.Select(op => op.Name), Is.EqualTo(new[] { "rmsnorm", "cublasGemmEx" }));
        d.Zero(y, Rows * Out * 4);
        using DeviceGraph graph = d.Instantiate(ops);
        var seen = new float[Rows * Out];
        d.Download<float>(y, seen);
        Assert.That(seen, Is.All.EqualTo(0f), "capturing runs nothing");

        foreach (int round in new[] { 0, 1 })
        {
            float[] input = Random(Rows * H);
            float[] want = Direct(input);
            d.Zero(y, Rows * Out * 4);
            d.Upload<float>(x, input);
            graph.Launch();
            d.Download<float>(y, seen);
            Assert.That(seen, Is.EqualTo(want), $"round {round}: the graph equals the direct launches on the new input");
        }
    }

    [Test]
    public void A_synchronisation_inside_a_capture_fails_and_leaves_the_stream_usable()
    {
        using var d = new DriverCudaDevice(0);
        var op = new RecordedOp("sync", [], d.Synchronize);
        Assert.That(() => d.Instantiate([op]), Throws.TypeOf<CudaException>().With.Message.Contains("cuStreamSynchronize").And.Message.Contains("capturing"));
        DevicePtr p = d.AllocUpload<float>([1f, 2f]);
        var back = new float[2];
        d.Download<float>(p, back);
        Assert.That(back, Is.EqualTo(new[] { 1f, 2f }));
    }
}
