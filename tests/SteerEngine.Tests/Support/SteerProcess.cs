using System.Diagnostics;
using System.Text;

namespace SteerEngine.Tests.Support;

/// <summary>The `steer` command as its own process (from the test binaries), for tests that kill it or run several at once.</summary>
public static class SteerProcess
{
    /// <summary>Starts `steer ARGS`, killed when disposed; what it prints is read and dropped.</summary>
    public static SteerChild Start(params string[] args) => new(Launch(args, _ => { }));

    /// <summary>Runs `steer ARGS` to its end (at most <paramref name="timeout"/>): exit code and what it printed.</summary>
    public static (int Code, string Out) Run(TimeSpan timeout, params string[] args)
    {
        var text = new StringBuilder();
        using Process p = Launch(args, line => { lock (text) text.AppendLine(line); });
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            lock (text) return (-1, $"steer {string.Join(' ', args)} did not finish in {timeout.TotalSeconds:0} s\n{text}");
        }
        p.WaitForExit(); // the output readers drained
        lock (text) return (p.ExitCode, text.ToString());
    }

    static Process Launch(string[] args, Action<string?> line)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "steer.dll"));
        foreach (string a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => line(e.Data);
        p.ErrorDataReceived += (_, e) => line(e.Data);
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
