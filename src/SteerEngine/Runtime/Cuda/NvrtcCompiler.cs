using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using SteerEngine.Runtime.Cuda.Native;

namespace SteerEngine.Runtime.Cuda;

/// <summary>The result of compiling one kernel file: PTX text or a cubin, and NVRTC's log (warnings).</summary>
public sealed record NvrtcOutput(byte[] Image, string Log);

/// <summary>
/// Compiles kernels/*.cu with NVRTC for one architecture (sm_80 = A100, sm_90 = H100). Cubins are
/// cached on disk under a key of source, header and option hash + architecture + NVRTC version, so
/// a process compiles each file once per machine and a changed option never loads a stale cubin.
/// </summary>
public static unsafe class NvrtcCompiler
{
    /// <summary>
    /// What the backend compiles with beyond the architecture: line information in the cubin, so
    /// compute-sanitizer and Nsight name the source line of a fault (no effect on the code). From
    /// NVRTC 12 on (what a GPU machine has): NVRTC 11.8, the one Debian ships and the tests here
    /// use, recurses until it crashes on attention_decode.cu with -lineinfo.
    /// </summary>
    public static IReadOnlyList<string> DeviceOptions => Version().Major >= 12 ? ["-lineinfo"] : [];

    public static bool IsAvailable => CudaLibraries.IsAvailable("nvrtc");

    public static (int Major, int Minor) Version()
    {
        int major, minor;
        NvrtcApi.Check(NvrtcApi.nvrtcVersion(&major, &minor), "nvrtcVersion");
        return (major, minor);
    }

    /// <param name="arch">compute capability × 10, e.g. 80 or 90</param>
    /// <param name="cubin">a cubin for sm_{arch}; else PTX for compute_{arch}</param>
    /// <param name="extraOptions">further NVRTC options, e.g. <see cref="DeviceOptions"/></param>
    public static NvrtcOutput Compile(string fileName, string source, int arch, bool cubin, IReadOnlyList<string>? extraOptions = null)
    {
        string[] options = [cubin ? $"--gpu-architecture=sm_{arch}" : $"--gpu-architecture=compute_{arch}", "--std=c++17", .. extraOptions ?? []];
        IntPtr program;
        using var src = new Utf8(source);
        using var name = new Utf8(fileName);
        using var header = new Utf8(KernelSources.Header);
        using var headerName = new Utf8(KernelSources.HeaderName);
        byte* h = header.Pointer, hn = headerName.Pointer;
        NvrtcApi.Check(NvrtcApi.nvrtcCreateProgram(&program, src.Pointer, name.Pointer, 1, &h, &hn), "nvrtcCreateProgram");
        try
        {
            var opts = options.Select(o => new Utf8(o)).ToArray();
            byte** optPtrs = stackalloc byte*[opts.Length];
            for (int i = 0; i < opts.Length; i++) optPtrs[i] = opts[i].Pointer;
            int result = NvrtcApi.nvrtcCompileProgram(program, opts.Length, optPtrs);
            foreach (Utf8 o in opts) o.Dispose();

            nuint logSize;
            NvrtcApi.nvrtcGetProgramLogSize(program, &logSize);
            var log = new byte[logSize];
            fixed (byte* l = log) NvrtcApi.nvrtcGetProgramLog(program, l);
            string logText = Encoding.UTF8.GetString(log).TrimEnd('\0').Trim();
            if (result != 0) throw new CudaException($"NVRTC could not compile {fileName} for {arch}: {logText}");

            nuint size;
            if (cubin) NvrtcApi.Check(NvrtcApi.nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize");
            else NvrtcApi.Check(NvrtcApi.nvrtcGetPTXSize(program, &size), "nvrtcGetPTXSize");
            var image = new byte[size];
            fixed (byte* p = image)
            {
                if (cubin) NvrtcApi.Check(NvrtcApi.nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
                else NvrtcApi.Check(NvrtcApi.nvrtcGetPTX(program, p), "nvrtcGetPTX");
            }
            return new NvrtcOutput(image, logText);
        }
        finally
        {
            NvrtcApi.nvrtcDestroyProgram(&program);
        }
    }

    /// <summary>The cubin of one kernel file, from the disk cache or compiled now.</summary>
    public static byte[] CachedCubin(string fileName, string source, int arch, IReadOnlyList<string>? extraOptions = null)
    {
        (int major, int minor) = Version();
        string key = source + "\0" + KernelSources.Header + "\0" + string.Join("\0", extraOptions ?? []);
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..24];
        string path = Path.Combine(CacheDirectory(), $"{Path.GetFileNameWithoutExtension(fileName)}-{hash}-sm{arch}-nvrtc{major}.{minor}.cubin");
        if (File.Exists(path)) return File.ReadAllBytes(path);
        byte[] image = Compile(fileName, source, arch, cubin: true, extraOptions).Image;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = path + "." + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(temp, image);
        File.Move(temp, path, overwrite: true);
        return image;
    }

    static string CacheDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "steer", "cubin");
    }

    /// <summary>A NUL-terminated UTF-8 copy of a string in unmanaged memory.</summary>
    sealed class Utf8 : IDisposable
    {
        public Utf8(string s) => Pointer = (byte*)Marshal.StringToCoTaskMemUTF8(s);
        public byte* Pointer { get; }
        public void Dispose() => Marshal.FreeCoTaskMem((IntPtr)Pointer);
    }
}
