using System.Text;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>Every kernel file compiles with NVRTC for A100 (sm_80) and H100 (sm_90), with no warnings.</summary>
[TestFixture]
public class NvrtcTests
{
    static void RequireNvrtc()
    {
        if (!NvrtcCompiler.IsAvailable) Assert.Ignore("libnvrtc cannot be loaded (./build.sh test installs Debian's libnvrtc11.2)");
    }

    public static IEnumerable<string> KernelFiles() => KernelSources.Files.Keys.Order();

    [Test]
    public void Every_kernel_file_is_embedded()
    {
        string[] onDisk = Directory.GetFiles(Repo.Path("kernels"), "*.cu").Select(Path.GetFileName).Order().ToArray()!;
        Assert.That(KernelFiles(), Is.EqualTo(onDisk));
    }

    [Test]
    public void Every_kernel_compiles_to_a_cubin_for_sm80_and_sm90_without_warnings([ValueSource(nameof(KernelFiles))] string file, [Values(80, 90)] int arch)
    {
        RequireNvrtc();
        NvrtcOutput output = NvrtcCompiler.Compile(file, KernelSources.Files[file], arch, cubin: true, NvrtcCompiler.DeviceOptions);
        Assert.That(output.Log, Is.Empty, "NVRTC log");
        Assert.That(output.Image.Length, Is.GreaterThan(0));
    }

    [TestCase(80)]
    [TestCase(90)]
    public void Prefill_attention_ptx_uses_bf16_tensor_core_mma(int arch)
    {
        RequireNvrtc();
        string ptx = Encoding.UTF8.GetString(NvrtcCompiler.Compile("attention_prefill.cu", KernelSources.Files["attention_prefill.cu"], arch, cubin: false).Image);
        Assert.That(ptx, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        foreach (int hd in new[] { 32, 64, 128 }) Assert.That(ptx, Does.Contain($".entry attention_prefill_hd{hd}"));
    }

    [Test]
    public void The_emulator_has_every_kernel_nvrtc_compiles()
    {
        RequireNvrtc();
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        var entries = new List<string>();
        foreach ((string file, string source) in KernelSources.Files)
        {
            string ptx = Encoding.UTF8.GetString(NvrtcCompiler.Compile(file, source, 80, cubin: false).Image);
            entries.AddRange(System.Text.RegularExpressions.Regex.Matches(ptx, @"\.entry\s+(\w+)").Select(m => m.Groups[1].Value));
        }
        Assert.That(entries, Is.Not.Empty);
        Assert.That(EmulatedCudaDevice.KernelNames(), Is.SupersetOf(entries));
    }

    [Test]
    public void Cubins_are_cached_by_source_architecture_and_nvrtc_version()
    {
        RequireNvrtc();
        string cache = TestModels.TempDir("cubin-cache");
        string? old = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        Environment.SetEnvironmentVariable("XDG_CACHE_HOME", cache);
        try
        {
            byte[] first = NvrtcCompiler.CachedCubin("swiglu.cu", KernelSources.Files["swiglu.cu"], 90);
            string[] files = Directory.GetFiles(Path.Combine(cache, "steer", "cubin"));
            Assert.That(files, Has.Length.EqualTo(1));
            Assert.That(Path.GetFileName(files[0]), Does.StartWith("swiglu-").And.Contain("-sm90-nvrtc11.8"));
            Assert.That(NvrtcCompiler.CachedCubin("swiglu.cu", KernelSources.Files["swiglu.cu"], 90), Is.EqualTo(first));
            // Other options, another cubin: a cached image never stands in for different compile options.
            NvrtcCompiler.CachedCubin("swiglu.cu", KernelSources.Files["swiglu.cu"], 90, ["-DSTEER_CACHE_PROBE=1"]);
            Assert.That(Directory.GetFiles(Path.Combine(cache, "steer", "cubin")), Has.Length.EqualTo(2));
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", old);
        }
    }
}
