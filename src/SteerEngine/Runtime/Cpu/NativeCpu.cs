using System.Reflection;
using System.Runtime.InteropServices;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// One steering term of a row, layout of the C <c>steer_add</c>, on the row's elements [Offset, Offset + Width)
/// (Width 0: the whole row): with Op = Add, s += Multiplier · vectors[Vector]; AddNormalized keeps the slice's norm;
/// Ablate, Cap and Set clamp the projection on the vector's direction to [Lo, Hi] (see <see cref="SteeringOps"/>).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SteerAdd(int Vector, float Multiplier, SteeringOp Op = SteeringOp.Add, float Lo = 0f, float Hi = 0f, int Offset = 0, int Width = 0);

/// <summary>
/// One sequence of an attention batch (layout of the C <c>steer_attn_seq</c>): its new tokens are rows
/// [Row, Row + Count) of q and the output; its cache holds Start + Count rows of (nkv·hd) floats, new
/// tokens included, and new token i sees cache rows 0..Start+i. The pointers must stay valid (pinned)
/// for the call: allocate KV caches with <c>GC.AllocateArray(pinned: true)</c> or pin them.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly unsafe struct AttentionSequence(float* keys, float* values, int row, int count, int start)
{
    public readonly float* Keys = keys;     // (Start + Count, nkv*hd)
    public readonly float* Values = values; // (Start + Count, nkv*hd)
    public readonly int Row = row;
    public readonly int Count = count;
    public readonly int Start = start;
    readonly int _pad = 0;
}

/// <summary>
/// Bindings to libsteer_cpu (native/cpu/steer_cpu.h; shapes are documented there). The library is
/// looked up in $STEER_NATIVE_DIR when set, then where <see cref="EngineNativeLibraries"/> looks: next
/// to the application, in the NuGet package's runtimes/&lt;rid&gt;/native, then in &lt;repo&gt;/out/native-cpu/
/// where ./build.sh puts it.
/// </summary>
public static unsafe partial class NativeCpu
{
    const string Lib = "steer_cpu";

    public const uint FeatureAvx2Fma = 1, FeatureAvx512 = 2, FeatureAvx512Bf16 = 4;
    public const int IsaScalar = 0, IsaAvx2 = 1, IsaAvx512 = 2, IsaAvx512Bf16 = 3;
    public const int GemmAuto = 0, GemmDot = 1, GemmWide = 2;

    static readonly Lazy<bool> Available = new(Probe);

    static NativeCpu()
    {
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(NativeCpu).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Another part of the assembly registered its resolver first; that one must also
            // handle "steer_cpu" (call NativeCpu.Resolve), or the default probing applies.
        }
    }

    /// <summary>True when libsteer_cpu was found and loads.</summary>
    public static bool IsAvailable => Available.Value;

    static bool Probe()
    {
        try
        {
            Features();
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return false;
        }
    }

    /// <summary>The DllImport resolver for "steer_cpu"; public so a shared resolver can delegate to it.</summary>
    public static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Lib) return IntPtr.Zero;
        foreach (string dir in SearchDirectories())
        {
            string path = Path.Combine(dir, FileName);
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out IntPtr handle)) return handle;
        }
        return IntPtr.Zero;
    }

    static string FileName =>
        OperatingSystem.IsWindows() ? "steer_cpu.dll" : OperatingSystem.IsMacOS() ? "libsteer_cpu.dylib" : "libsteer_cpu.so";

    static IEnumerable<string> SearchDirectories()
    {
        if (Environment.GetEnvironmentVariable("STEER_NATIVE_DIR") is { Length: > 0 } env) yield return env;
        foreach (string dir in EngineNativeLibraries.Directories(["out", "native-cpu"], ["out", "native-cpu", "Release"])) // Release: MSVC multi-config
            yield return dir;
    }

    [LibraryImport(Lib, EntryPoint = "steer_cpu_features")] public static partial uint Features();
    [LibraryImport(Lib, EntryPoint = "steer_cpu_set_isa")] public static partial int SetIsa(int isa);
    [LibraryImport(Lib, EntryPoint = "steer_cpu_isa")] public static partial int Isa();
    [LibraryImport(Lib, EntryPoint = "steer_cpu_init")] public static partial int Init(int threads);
    [LibraryImport(Lib, EntryPoint = "steer_cpu_threads")] public static partial int Threads();
    [LibraryImport(Lib, EntryPoint = "steer_cpu_set_gemm_mode")] public static partial int SetGemmMode(int mode);

    [LibraryImport(Lib, EntryPoint = "steer_pack_size")] public static partial nuint PackSize(int rows, int cols);
    [LibraryImport(Lib, EntryPoint = "steer_pack_bf16")] public static partial void PackBf16(ushort* w, int rows, int cols, ushort* packed);
    [LibraryImport(Lib, EntryPoint = "steer_pack_f32")] public static partial void PackF32(float* w, int rows, int cols, ushort* packed);
    [LibraryImport(Lib, EntryPoint = "steer_pack_f16")] public static partial void PackF16(ushort* w, int rows, int cols, ushort* packed);

    [LibraryImport(Lib, EntryPoint = "steer_gemm_bf16")] public static partial void Gemm(float* x, int m, int k, ushort* packed, int n, float* y);
    [LibraryImport(Lib, EntryPoint = "steer_ref_gemm_bf16")] public static partial void RefGemm(float* x, int m, int k, ushort* packed, int n, float* y);

    [LibraryImport(Lib, EntryPoint = "steer_rmsnorm")] public static partial void RmsNorm(float* x, float* weight, float* y, int rows, int n, float eps);
    [LibraryImport(Lib, EntryPoint = "steer_ref_rmsnorm")] public static partial void RefRmsNorm(float* x, float* weight, float* y, int rows, int n, float eps);
    [LibraryImport(Lib, EntryPoint = "steer_rope")] public static partial void Rope(float* x, int rows, int heads, int hd, int* positions, float* invFreq);
    [LibraryImport(Lib, EntryPoint = "steer_ref_rope")] public static partial void RefRope(float* x, int rows, int heads, int hd, int* positions, float* invFreq);
    [LibraryImport(Lib, EntryPoint = "steer_swiglu")] public static partial void SwiGlu(float* gate, float* up, long count);
    [LibraryImport(Lib, EntryPoint = "steer_ref_swiglu")] public static partial void RefSwiGlu(float* gate, float* up, long count);
    [LibraryImport(Lib, EntryPoint = "steer_residual_add_steered")]
    public static partial void ResidualAddSteered(float* x, float* delta, int rows, int h, int* rowAdds, SteerAdd* adds, float** vectors);
    [LibraryImport(Lib, EntryPoint = "steer_ref_residual_add_steered")]
    public static partial void RefResidualAddSteered(float* x, float* delta, int rows, int h, int* rowAdds, SteerAdd* adds, float** vectors);
    [LibraryImport(Lib, EntryPoint = "steer_log_softmax")] public static partial void LogSoftmax(float* logits, float* output, int rows, int v);
    [LibraryImport(Lib, EntryPoint = "steer_ref_log_softmax")] public static partial void RefLogSoftmax(float* logits, float* output, int rows, int v);
    [LibraryImport(Lib, EntryPoint = "steer_attention")]
    public static partial void Attention(float* q, float* output, AttentionSequence* seqs, int nseq, int nh, int nkv, int hd);
    [LibraryImport(Lib, EntryPoint = "steer_ref_attention")]
    public static partial void RefAttention(float* q, float* output, AttentionSequence* seqs, int nseq, int nh, int nkv, int hd);

    [LibraryImport(Lib, EntryPoint = "steer_probe_read_bandwidth")] public static partial double ProbeReadBandwidth(long bytes, int iters);
    [LibraryImport(Lib, EntryPoint = "steer_probe_f32_fma_gflops")] public static partial double ProbeF32FmaGflops();
    [LibraryImport(Lib, EntryPoint = "steer_probe_bf16_dot_gflops")] public static partial double ProbeBf16DotGflops();
}
