using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace SteerEngine.Tests.Serving;

/// <summary>`steer serve` as its own process (from the test binaries), for tests that kill or signal it.</summary>
public sealed partial class ServeProcess : IDisposable
{
    readonly Process _process;
    public Uri BaseAddress { get; }
    public HttpClient Http { get; }

    ServeProcess(Process process, Uri address)
    {
        _process = process;
        BaseAddress = address;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
    }

    [GeneratedRegex(@"serving on (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex Serving();

    public static ServeProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "steer.dll"));
        info.ArgumentList.Add("serve");
        foreach (string a in args) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var started = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) { started.TrySetException(new InvalidOperationException("steer serve exited: " + log)); return; }
            lock (log) log.AppendLine(e.Data);
            if (Serving().Match(e.Data) is { Success: true } m) started.TrySetResult(new Uri(m.Groups[1].Value));
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        if (!started.Task.Wait(TimeSpan.FromSeconds(60)))
        {
            process.Kill();
            throw new TimeoutException("steer serve did not start within 60 s: " + log);
        }
        return new ServeProcess(process, started.Task.Result);
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void KillHard()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int sig);

    /// <summary>SIGTERM, then the exit code once the process is gone.</summary>
    public int Terminate(TimeSpan timeout)
    {
        kill(_process.Id, 15);
        if (!_process.WaitForExit(timeout)) { _process.Kill(); return -1; }
        return _process.ExitCode;
    }

    public void Dispose()
    {
        Http.Dispose();
        if (!_process.HasExited) { _process.Kill(); _process.WaitForExit(); }
        _process.Dispose();
    }
}
