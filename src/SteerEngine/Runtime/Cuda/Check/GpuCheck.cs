using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime.Cuda.Check;

/// <summary>What one run of the GPU check is asked to do.</summary>
/// <param name="Emulate">every step on native/cuemu's driver at small shapes (a dry run of the check itself)</param>
/// <param name="OutDir">where report.json, summary.txt and the random models go</param>
/// <param name="TestAssembly">SteerEngine.Tests.dll, for the kernel and GEMM tests on the device (skipped without it)</param>
public sealed record GpuCheckOptions(bool Emulate, string OutDir, string? TestAssembly);

/// <summary>One step's outcome: passed, failed or skipped, with its figures.</summary>
public sealed class GpuCheckStep(string name)
{
    public string Name { get; } = name;
    public string Status { get; set; } = "passed";
    public double Seconds { get; set; }
    public string? Error { get; set; }
    public JsonObject Details { get; } = [];
    /// <summary>One line per figure for the readable summary.</summary>
    public List<string> Lines { get; } = [];

    public void Fail(string why)
    {
        Status = "failed";
        Lines.Add("FAIL: " + why);
        Error ??= why;
    }
}

/// <summary>
/// <c>./build.sh gpu-check</c>: everything the first person with a GPU should run, in order, into
/// one JSON report and a readable summary — device and compile, the kernel and GEMM tests on the
/// device, the mma layout probe, a GEMM sweep over the 8B and 70B shapes, end to end at TP = 1
/// against the CPU backend, 8B-shape throughput against the roofline, and with two GPUs the same
/// at TP = 2 with all-reduce timings. With <see cref="GpuCheckOptions.Emulate"/> every step runs on
/// the emulator's driver (STEER_CUDA_DRIVER=cuemu) at small shapes, which tests the check itself.
/// </summary>
public static class GpuCheck
{
    public const int ExitPassed = 0, ExitFailed = 1, ExitNoDriver = 3;

    public static int Run(GpuCheckOptions options, TextWriter log)
    {
        if (options.Emulate)
        {
            Environment.SetEnvironmentVariable("STEER_CUDA_DRIVER", "cuemu");
            Environment.SetEnvironmentVariable("CUEMU_DEVICES", "2");
        }
        else if (!CudaLibraries.IsAvailable("cuda"))
        {
            log.WriteLine("gpu-check: no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded); nothing to check. " +
                          "Run it where the driver is installed, or `./build.sh gpu-check --emulate` for a dry run on the CPU emulator.");
            return ExitNoDriver;
        }
        Directory.CreateDirectory(options.OutDir);
        var steps = new GpuCheckSteps(options, log);
        var results = new List<GpuCheckStep>();
        var started = DateTime.UtcNow;
        foreach ((string name, Action<GpuCheckStep> body) in steps.All())
        {
            var step = new GpuCheckStep(name);
            log.WriteLine($"== {name}");
            var clock = Stopwatch.StartNew();
            try { body(step); }
            catch (Exception e) { step.Fail($"{e.GetType().Name}: {e.Message}"); }
            step.Seconds = Math.Round(clock.Elapsed.TotalSeconds, 2);
            foreach (string line in step.Lines) log.WriteLine("   " + line);
            log.WriteLine($"   {step.Status} ({step.Seconds:F1} s)");
            results.Add(step);
            if (name == GpuCheckSteps.DeviceStep && step.Status == "failed") break; // nothing else can run
        }
        WriteReport(options, started, results);
        log.WriteLine($"report: {Path.Combine(options.OutDir, "report.json")}, summary: {Path.Combine(options.OutDir, "summary.txt")}");
        return results.Any(r => r.Status == "failed") ? ExitFailed : ExitPassed;
    }

    static void WriteReport(GpuCheckOptions options, DateTime started, List<GpuCheckStep> results)
    {
        var report = new JsonObject
        {
            ["started_utc"] = started.ToString("o"),
            ["emulated"] = options.Emulate,
            ["host"] = Environment.MachineName,
            ["passed"] = results.All(r => r.Status != "failed"),
            ["steps"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
            {
                ["name"] = r.Name, ["status"] = r.Status, ["seconds"] = r.Seconds, ["error"] = r.Error,
                ["details"] = r.Details.DeepClone(),
            }).ToArray()),
        };
        File.WriteAllText(Path.Combine(options.OutDir, "report.json"), report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var summary = new StringBuilder();
        summary.AppendLine($"steer gpu-check {(options.Emulate ? "(emulated dry run: figures are not a GPU's)" : "")} started {started:u}");
        foreach (GpuCheckStep r in results)
        {
            summary.AppendLine($"{r.Name}: {r.Status} ({r.Seconds:F1} s)");
            foreach (string line in r.Lines) summary.AppendLine("  " + line);
        }
        File.WriteAllText(Path.Combine(options.OutDir, "summary.txt"), summary.ToString());
    }
}
