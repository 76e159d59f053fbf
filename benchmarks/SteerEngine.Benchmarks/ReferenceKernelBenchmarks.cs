using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Benchmarks;

/// <summary>
/// The exact f32 reference kernels at Llama-3.2-1B layer shapes. Read the GFLOP/s from
/// 2·rows·out·in / mean time; these are the baseline the fast kernels are measured against.
/// </summary>
[MemoryDiagnoser]
public unsafe class ReferenceKernelBenchmarks : IDisposable
{
    const int In = 2048, Out = 8192;
    ushort* _weights;
    WeightMatrix _w = null!;
    float[] _x = null!, _y = null!, _q = null!, _k = null!, _v = null!, _att = null!;

    [Params(1, 16)]
    public int Rows;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _weights = (ushort*)NativeMemory.AlignedAlloc((nuint)((long)In * Out * 2), 64);
        for (long i = 0; i < (long)In * Out; i++) _weights[i] = BFloat16Convert.FromF32RoundNearestEven((float)(rng.NextDouble() - 0.5));
        _w = new WeightMatrix("bench", DType.BF16, Out, In, (byte*)_weights);
        _x = Enumerable.Range(0, Rows * In).Select(_ => (float)rng.NextDouble()).ToArray();
        _y = new float[Rows * Out];
        const int ctx = 512, heads = 32, kvHeads = 8, hd = 64;
        _q = Enumerable.Range(0, Rows * heads * hd).Select(_ => (float)rng.NextDouble()).ToArray();
        _k = Enumerable.Range(0, (ctx + Rows) * kvHeads * hd).Select(_ => (float)rng.NextDouble()).ToArray();
        _v = Enumerable.Range(0, (ctx + Rows) * kvHeads * hd).Select(_ => (float)rng.NextDouble()).ToArray();
        _att = new float[Rows * heads * hd];
    }

    [Benchmark]
    public void MatMulBf16() => MatMul.Forward(_x, _w, _y, Rows);

    [Benchmark]
    public void AttentionOverCache512() => Attention.Forward(_q, _k, _v, _att, Rows, 512, 32, 8, 64);

    [GlobalCleanup]
    public void Dispose() => NativeMemory.AlignedFree(_weights);
}
