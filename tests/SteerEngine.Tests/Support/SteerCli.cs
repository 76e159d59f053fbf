namespace SteerEngine.Tests.Support;

/// <summary>Runs the `steer` command in-process and captures what it prints (tests using it must be NonParallelizable).</summary>
public static class SteerCli
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            int code = SteerEngine.Cli.Program.Main(args);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    /// <summary>
    /// As <see cref="Run"/>, with STEER_CUDA_DRIVER unset meanwhile, so <c>--backend cuda</c> sees this
    /// machine's own driver (the emulator tests point the test process at native/cuemu's).
    /// </summary>
    public static (int Code, string Out, string Err) RunWithThisMachinesDriver(params string[] args)
    {
        string? emulated = Environment.GetEnvironmentVariable("STEER_CUDA_DRIVER");
        Environment.SetEnvironmentVariable("STEER_CUDA_DRIVER", null);
        try { return Run(args); }
        finally { Environment.SetEnvironmentVariable("STEER_CUDA_DRIVER", emulated); }
    }
}
