using System.CommandLine;
using SteerEngine.Runtime.Cuda.Check;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer gpu-check</c> (what <c>./build.sh gpu-check</c> runs): the CUDA backend's checks on this
/// machine's GPU, into a JSON report and a readable summary. Exit code 0 all passed, 1 a step
/// failed, 3 no NVIDIA driver.
/// </summary>
public static class GpuCheckCommand
{
    public static Command Create()
    {
        var emulate = new Option<bool>("--emulate") { Description = "dry run: every step on the CPU emulator's driver at small shapes" };
        var outDir = new Option<string>("--out") { Description = "folder for report.json, summary.txt and the random models", DefaultValueFactory = _ => "out/gpu-check" };
        var tests = new Option<string?>("--tests") { Description = "SteerEngine.Tests.dll, for the kernel and GEMM tests on the device" };
        var command = new Command("gpu-check", "check the CUDA backend on this machine's GPU (report in --out)") { emulate, outDir, tests };
        command.SetAction(p => CliErrors.Run(() =>
            GpuCheck.Run(new GpuCheckOptions(p.GetValue(emulate), p.GetValue(outDir)!, p.GetValue(tests)), Console.Out)));
        return command;
    }
}
