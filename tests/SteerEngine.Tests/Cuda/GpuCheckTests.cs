using System.Diagnostics;
using System.Text.Json.Nodes;
using SteerEngine.Runtime.Cuda.Check;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// <c>./build.sh gpu-check</c>: here (no GPU) it stops at once with its own exit code, and its
/// emulated dry run runs every step on the emulator's driver, so the check itself is tested — and
/// with it the driver path (DriverCudaDevice, NCCL in the primary contexts) end to end at TP = 1
/// and 2 against the CPU backend.
/// </summary>
[TestFixture]
public class GpuCheckTests
{
    [Test]
    public void The_emulated_dry_run_passes_every_step_and_writes_the_report()
    {
        Emulator.UseEmulatedDriver();
        string dir = TestModels.TempDir("gpu-check");
        var log = new StringWriter();
        int exit = GpuCheck.Run(new GpuCheckOptions(Emulate: true, dir, TestAssembly: null), log);
        Assert.That(exit, Is.EqualTo(GpuCheck.ExitPassed), log.ToString());
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "report.json")))!;
        var steps = report["steps"]!.AsArray();
        Assert.That(steps.Select(s => s!["name"]!.GetValue<string>()), Has.Some.StartsWith("GEMM sweep").And.Some.StartsWith("tensor parallel").And.Some.StartsWith("device sampling").And.Some.StartsWith("one BiPO step").And.Some.StartsWith("decode graphs"));
        Assert.That(steps, Has.Count.EqualTo(10));
        // The kernel tests need the test assembly (./build.sh passes it); every other step ran.
        Assert.That(steps.Where(s => s!["status"]!.GetValue<string>() != "passed").Select(s => s!["name"]!.GetValue<string>()),
            Is.EqualTo(new[] { "kernel and GEMM tests on the device" }));
        Assert.That(report["steps"]![0]!["details"]!["kernels"]!["attention_decode_hd128"]!["launch_threads"]!.GetValue<int>(), Is.EqualTo(128));
        Assert.That(File.ReadAllText(Path.Combine(dir, "summary.txt")), Does.Contain("decode batch 4 steered"));
        JsonNode bipo = steps.Single(s => s!["name"]!.GetValue<string>().StartsWith("one BiPO step"))!["details"]!;
        Assert.That(bipo["bipo_step"]!["peak_workspace_gib"], Is.Not.Null);
        Assert.That(bipo["tiny_keep"]!["differing_elements"]!.GetValue<int>(), Is.Zero);
        Assert.That(bipo["bipo_step"]!["kept_blocks"]!.GetValue<int>(), Is.Positive);
        Assert.That(bipo["bipo_step"]!["recomputed_blocks"]!.GetValue<long>(), Is.Zero, "the default budget keeps all of tiny's upper blocks above layer 1");
        // The emulator's driver reports an 80 GiB device (cuMemGetInfo), so auto has room for all of tiny's lower upper blocks.
        Assert.That(bipo["bipo_step"]!["auto_kept_blocks"]!.GetValue<int>(), Is.EqualTo(SteerEngine.Model.ModelShapes.Get("tiny").NumLayers - 3));
        Assert.That(bipo["bipo_step"]!["auto_keep_gib"]!.GetValue<double>(), Is.GreaterThan(60));
        JsonNode decode = steps.Single(s => s!["name"]!.GetValue<string>().StartsWith("decode graphs"))!["details"]!;
        Assert.That(decode["graphs_pages_256"]!["differing_logits"]!.GetValue<long>(), Is.Zero);
        Assert.That(decode["graphs_pages_256"]!["replays"]!.GetValue<int>(), Is.Positive, "graphs captured on the emulated driver are replayed");
    }

    [Test]
    public void Without_an_nvidia_driver_build_sh_gpu_check_stops_with_exit_code_3()
    {
        var ldconfig = Process.Start(new ProcessStartInfo("ldconfig", "-p") { RedirectStandardOutput = true })!;
        if (ldconfig.StandardOutput.ReadToEnd().Contains("libcuda.so.1")) Assert.Ignore("this machine has an NVIDIA driver");
        ldconfig.WaitForExit();
        var start = new ProcessStartInfo("bash", [Repo.Path("build.sh"), "gpu-check"]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using Process p = Process.Start(start)!;
        string error = p.StandardError.ReadToEnd();
        Assert.That(p.WaitForExit(60_000), Is.True);
        Assert.That(p.ExitCode, Is.EqualTo(GpuCheck.ExitNoDriver));
        Assert.That(error, Does.Contain("no NVIDIA driver"));
    }
}
