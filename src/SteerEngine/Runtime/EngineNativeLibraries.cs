using System.Runtime.InteropServices;

namespace SteerEngine.Runtime;

/// <summary>
/// Where the engine's own native libraries (libsteer_cpu, libsteer_cuemu) are looked for, so that
/// both a build of this repository and an application that references the SteerEngine NuGet package
/// find them with no environment variable: the application's directory; the directories the .NET
/// host lists from the application's deps.json (a package's <c>runtimes/&lt;rid&gt;/native</c>, copied
/// next to the application or still in the package cache); <c>runtimes/&lt;rid&gt;/native</c> under the
/// application; then, above the application, the repository's <c>out/&lt;build&gt;</c> where ./build.sh
/// puts them.
/// </summary>
static class EngineNativeLibraries
{
    /// <summary>The portable runtime identifier NuGet packages use for this process (linux-x64, win-x64, osx-arm64).</summary>
    public static string PortableRid =>
        (OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux") + "-" +
        RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>Directories to try in order; <paramref name="repoBuildDirs"/> are relative to a repository root (found by its native/cpu/CMakeLists.txt).</summary>
    public static IEnumerable<string> Directories(params string[][] repoBuildDirs)
    {
        yield return AppContext.BaseDirectory;
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string hostDirs)
            foreach (string dir in hostDirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
                yield return dir;
        yield return Path.Combine(AppContext.BaseDirectory, "runtimes", PortableRid, "native");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "native", "cpu", "CMakeLists.txt")))
            {
                foreach (string[] relative in repoBuildDirs) yield return Path.Combine([dir.FullName, .. relative]);
                yield break;
            }
    }
}
