using System.Reflection;

namespace SteerEngine.Runtime.Cuda;

/// <summary>kernels/*.cu and their shared header, embedded in the assembly (what NVRTC compiles at run time).</summary>
public static class KernelSources
{
    const string Prefix = "SteerEngine.Kernels.";
    public const string HeaderName = "common.cuh";

    static readonly Lazy<IReadOnlyDictionary<string, string>> All = new(Load);

    /// <summary>File name → source text of every kernel file (*.cu).</summary>
    public static IReadOnlyDictionary<string, string> Files => All.Value.Where(kv => kv.Key.EndsWith(".cu")).ToDictionary();

    public static string Header => All.Value[HeaderName];

    static IReadOnlyDictionary<string, string> Load()
    {
        Assembly asm = typeof(KernelSources).Assembly;
        var files = new Dictionary<string, string>();
        foreach (string name in asm.GetManifestResourceNames().Where(n => n.StartsWith(Prefix)))
        {
            using var reader = new StreamReader(asm.GetManifestResourceStream(name)!);
            files[name[Prefix.Length..]] = reader.ReadToEnd();
        }
        return files;
    }
}
