using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Benchmarks;

/// <summary>
/// The packed bf16 GEMM y(m, out) = x(m, in) · Wᵀ at Llama-3.2-1B shapes (2048 → 8192: gate/up;
/// 8192 → 2048: down), native and managed. GFLOP/s = 2·m·in·out / mean; GB/s = weight bytes
/// (2·in·out) / mean. At m = 1 the 32 MB matrix can sit in a large L3: use <see cref="GemvBenchmarks"/>
/// for the bandwidth figure. Compare with `bench_kernels` (native/cpu) for the machine's probes.
///   dotnet run -c Release --project benchmarks/SteerEngine.Benchmarks -- --filter '*GemmBenchmarks*'
/// </summary>
[Config(typeof(Config))]
public unsafe class GemmBenchmarks : IDisposable
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new ThroughputColumn("GFLOP/s", c => 2.0 * ThroughputColumn.Param(c, nameof(Rows)) * Elements(c)));
            AddColumn(new ThroughputColumn("GB/s", c => 2.0 * Elements(c)));
        }
    }

    static double Elements(BenchmarkDotNet.Running.BenchmarkCase c)
    {
        int inDim = ThroughputColumn.Param(c, nameof(In));
        return (double)inDim * OutFor(inDim);
    }

    static int OutFor(int inDim) => inDim == 2048 ? 8192 : 2048;

    [Params(1, 16, 64, 512)] public int Rows;
    [Params(2048, 8192)] public int In;
    [Params("native", "managed")] public string Impl = "native";
    public int Out => OutFor(In);

    ICpuKernels _kernels = null!;
    PackedMatrix _w = null!;
    float[] _x = null!, _y = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kernels = Impl == "native" ? new NativeCpuKernels() : new ManagedCpuKernels();
        _w = Weights.RandomPacked(_kernels, Out, In, seed: 1);
        var rng = new Random(2);
        _x = Enumerable.Range(0, Rows * In).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _y = new float[Rows * Out];
    }

    [Benchmark]
    public void MatMul() => _kernels.MatMul(_x, _w, _y, Rows);

    [GlobalCleanup]
    public void Dispose() => _w.Dispose();
}

/// <summary>
/// m = 1 decode GEMV streaming from DRAM: each invocation uses the next of 16 copies of the 2048 → 8192
/// matrix (512 MB in all, beyond L3). GB/s = 2·in·out / mean, against `bench_kernels`' read probe.
/// </summary>
[Config(typeof(Config))]
public unsafe class GemvBenchmarks : IDisposable
{
    sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new ThroughputColumn("GB/s", _ => 2.0 * In * Out));
    }

    const int In = 2048, Out = 8192, Copies = 16;

    [Params("native", "managed")] public string Impl = "native";

    ICpuKernels _kernels = null!;
    PackedMatrix[] _w = null!;
    float[] _x = null!, _y = null!;
    int _next;

    [GlobalSetup]
    public void Setup()
    {
        _kernels = Impl == "native" ? new NativeCpuKernels() : new ManagedCpuKernels();
        _w = Enumerable.Range(0, Copies).Select(i => Weights.RandomPacked(_kernels, Out, In, seed: i)).ToArray();
        _x = Enumerable.Range(0, In).Select(i => (float)Math.Sin(i)).ToArray();
        _y = new float[Out];
    }

    [Benchmark]
    public void Gemv() => _kernels.MatMul(_x, _w[_next++ % Copies], _y, 1);

    [GlobalCleanup]
    public void Dispose()
    {
        foreach (PackedMatrix w in _w) w.Dispose();
    }
}

static unsafe class Weights
{
    /// <summary>A random bf16 (out, in) matrix packed by the given kernels; the unpacked copy is freed.</summary>
    public static PackedMatrix RandomPacked(ICpuKernels kernels, int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        long count = (long)rows * cols;
        var data = (ushort*)NativeMemory.Alloc((nuint)(count * 2));
        try
        {
            for (long i = 0; i < count; i++) data[i] = BFloat16Convert.FromF32RoundNearestEven((float)(rng.NextDouble() - 0.5) * 0.1f);
            return kernels.Pack(new WeightMatrix("bench", DType.BF16, rows, cols, (byte*)data));
        }
        finally
        {
            NativeMemory.Free(data);
        }
    }
}
