using System.Diagnostics;

namespace SteerEngine.Tests.Support;

/// <summary>
/// A running `steer` process that dies with its scope: disposing it kills the process tree if it still runs,
/// so a test whose assertion fails between start and kill leaves nothing behind.
/// </summary>
public sealed class SteerChild(Process process) : IDisposable
{
    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    /// <summary>Waits at most <paramref name="milliseconds"/> for the process to end.</summary>
    public bool WaitForExit(int milliseconds) => process.WaitForExit(milliseconds);

    /// <summary>SIGKILL to the process and its children (no flush, no clean-up), then waits for it to be gone.</summary>
    public void Kill()
    {
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited) Kill();
        }
        catch (InvalidOperationException)
        {
            // it ended between the check and the kill
        }
        process.Dispose();
    }
}
