using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Benchmarks;

/// <summary>
/// Attention at Llama-3.2-1B heads (32 query heads, 8 KV heads, hd 64), native and managed:
/// prefill of one 512-token prompt, and decode of 64 sequences × 1 token over 512-row caches.
/// GFLOP/s counts 4·nh·hd per (query, visible key) pair (QKᵀ and PV); GB/s counts the KV bytes
/// read once per KV head group (decode).
/// </summary>
[Config(typeof(Config))]
public unsafe class AttentionBenchmarks
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new ThroughputColumn("GFLOP/s", c => c.Descriptor.WorkloadMethod.Name == nameof(Prefill512)
                ? 4.0 * Heads * HeadDim * (Context * (Context + 1) / 2.0)
                : 4.0 * Heads * HeadDim * Context * Sequences));
            AddColumn(new ThroughputColumn("KV GB/s", c => c.Descriptor.WorkloadMethod.Name == nameof(Prefill512)
                ? 2.0 * Context * KvHeads * HeadDim * 4
                : 2.0 * Sequences * Context * KvHeads * HeadDim * 4));
        }
    }

    const int Heads = 32, KvHeads = 8, HeadDim = 64, Context = 512, Sequences = 64;

    [Params("native", "managed")] public string Impl = "native";

    ICpuKernels _kernels = null!;
    float[] _q = null!, _out = null!, _keys = null!, _values = null!;
    AttentionSequence[] _prefill = null!, _decode = null!;

    [GlobalSetup]
    public void Setup()
    {
        _kernels = Impl == "native" ? new NativeCpuKernels() : new ManagedCpuKernels();
        var rng = new Random(3);
        float R() => (float)(rng.NextDouble() * 2 - 1);
        int kvDim = KvHeads * HeadDim;
        // One cache per decode sequence, each Context rows, in one pinned block.
        _keys = GC.AllocateArray<float>(Sequences * Context * kvDim, pinned: true);
        _values = GC.AllocateArray<float>(Sequences * Context * kvDim, pinned: true);
        for (int i = 0; i < _keys.Length; i++) { _keys[i] = R(); _values[i] = R(); }
        _q = Enumerable.Range(0, Context * Heads * HeadDim).Select(_ => R()).ToArray();
        _out = new float[_q.Length];
        fixed (float* k = _keys, v = _values)
        {
            _prefill = [new AttentionSequence(k, v, 0, Context, 0)];
            _decode = new AttentionSequence[Sequences];
            for (int s = 0; s < Sequences; s++)
                _decode[s] = new AttentionSequence(k + (long)s * Context * kvDim, v + (long)s * Context * kvDim, s, 1, Context - 1);
        }
    }

    [Benchmark]
    public void Prefill512() => _kernels.Attention(_q, _out, _prefill, Heads, KvHeads, HeadDim);

    [Benchmark]
    public void Decode64x512() => _kernels.Attention(_q, _out, _decode, Heads, KvHeads, HeadDim);
}
