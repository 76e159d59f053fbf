using BenchmarkDotNet.Running;

namespace SteerEngine.Benchmarks;

public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "bipo-step") return BipoStepBenchmark.Run(args[1..]);
        if (args.Length > 0 && args[0] == "bipo-keep") return BipoKeepCount.Run(args[1..]);
        if (args.Length > 0 && args[0] == "sampler-passes") return SamplerPassCount.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
