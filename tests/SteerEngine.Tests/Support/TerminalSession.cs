using System.Diagnostics;

namespace SteerEngine.Tests.Support;

/// <summary>
/// A program running in a real pseudo-terminal: a detached tmux session on a private tmux server
/// (its own socket), driven by send-keys and read by capture-pane. Disposing kills that server.
/// </summary>
public sealed class TerminalSession : IDisposable
{
    /// <summary>What the terminal shows once the program has ended: "[exit CODE]".</summary>
    public const string ExitMark = "[exit";

    readonly string _socket = $"steer-test-{Environment.ProcessId}-{Guid.NewGuid():N}";

    /// <summary>Starts <paramref name="command"/> (run by sh) in a width × height terminal; ignores the test when tmux is missing.</summary>
    public TerminalSession(string command, int width = 200, int height = 60)
    {
        if (!File.Exists("/usr/bin/tmux")) Assert.Ignore("tmux is needed to test in a pseudo-terminal (apt-get install tmux)");
        // The trailing sleep keeps the pane (and what the program printed last) readable after it exits.
        Tmux("new-session", "-d", "-s", "t", "-x", width.ToString(), "-y", height.ToString(), $"{command}; echo \"{ExitMark} $?]\"; sleep 60");
    }

    public void SendLine(string text)
    {
        Tmux("send-keys", "-t", "t", "-l", text);
        Tmux("send-keys", "-t", "t", "Enter");
    }

    public void SendKey(string key) => Tmux("send-keys", "-t", "t", key);

    /// <summary>The whole scrollback and screen as plain text, lines joined (-J undoes the terminal's wrapping).</summary>
    public string Screen() => Tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-2000");

    /// <summary>Polls the screen until <paramref name="done"/> holds; fails with the screen after <paramref name="seconds"/>.</summary>
    public string WaitFor(Func<string, bool> done, string what, double seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            string screen = Screen();
            if (done(screen)) return screen;
            if (screen.Contains(ExitMark)) Assert.Fail($"the program ended while waiting for {what}; the terminal shows:\n{screen}");
            if (clock.Elapsed.TotalSeconds > seconds) Assert.Fail($"timed out after {seconds} s waiting for {what}; the terminal shows:\n{screen}");
            Thread.Sleep(50);
        }
    }

    string Tmux(params string[] args)
    {
        var (code, output, error) = Run(args);
        if (code != 0) Assert.Fail($"tmux {string.Join(' ', args)} failed: {error}");
        return output;
    }

    (int Code, string Out, string Err) Run(string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/tmux") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-L");
        psi.ArgumentList.Add(_socket);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync(), error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(10_000)) { p.Kill(); return (-1, "", "tmux hung"); }
        return (p.ExitCode, output.Result, error.Result);
    }

    /// <summary>Ends the tmux server and the program in it (a no-op when it has already gone).</summary>
    public void Dispose() => Run(["kill-server"]);
}
