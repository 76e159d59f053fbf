using System.Diagnostics;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Demo;

/// <summary>The committed demo model and its Python side (models/demo/*.py, standard library only).</summary>
public static class DemoFiles
{
    public static string ModelDir => Repo.Path("models", "demo");
    public static string Lexicon => Repo.Path("models", "demo", "lexicon.json");

    public static void RequireModel()
    {
        if (!File.Exists(Path.Combine(ModelDir, "model.safetensors")))
            Assert.Fail($"{ModelDir}: the demo model's weights are missing");
    }

    /// <summary>Runs models/demo/{script} with /usr/bin/python3; returns its stdout lines.</summary>
    public static string[] Python(string script, string args, string? stdin = null)
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) Assert.Ignore("/usr/bin/python3 is needed for the demo language's Python side");
        var psi = new ProcessStartInfo(python, $"\"{Path.Combine(ModelDir, script)}\" {args}")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        p.WaitForExit();
        if (p.ExitCode != 0) Assert.Fail($"{script} {args} failed ({p.ExitCode}): {stderr.Result}");
        return stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
