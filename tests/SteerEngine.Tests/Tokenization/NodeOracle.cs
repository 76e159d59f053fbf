using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace SteerEngine.Tests.Tokenization;

/// <summary>
/// Runs the reference scripts in tests/oracle/node under node. Their npm packages are installed
/// by the build script (npm ci --prefix tests/oracle/node); without them the test is ignored.
/// </summary>
internal static class NodeOracle
{
    public static string Directory { get; } = FindOracleDirectory();

    public static string PackageDirectory(string package) =>
        Path.Combine(Directory, "node_modules", package);

    /// <summary>Ignores the calling test when the npm packages have not been installed.</summary>
    public static void RequirePackages(params string[] packages)
    {
        foreach (string package in packages)
            if (!System.IO.Directory.Exists(PackageDirectory(package)))
                Assert.Ignore($"npm package {package} is not installed in {Directory}; run the build script (it runs npm ci --prefix tests/oracle/node)");
    }

    /// <summary>Runs <c>node script args</c> in the oracle directory and returns its stdout.</summary>
    public static string Run(string script, IEnumerable<string> args, string? stdin = null)
    {
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = Directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(Path.Combine(Directory, script));
        foreach (string arg in args)
            start.ArgumentList.Add(arg);

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(stdin ?? "");
        process.StandardInput.Close();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"node {script} did not finish within 2 minutes");
        }
        if (process.ExitCode != 0)
            Assert.Fail($"node {script} exited with {process.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }

    static string FindOracleDirectory()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "oracle", "node");
            if (File.Exists(Path.Combine(candidate, "package.json")))
                return candidate;
        }
        throw new InvalidOperationException($"tests/oracle/node/package.json not found above {AppContext.BaseDirectory}");
    }
}
