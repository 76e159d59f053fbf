using System.Diagnostics;
using System.Text.Json.Nodes;
using SteerEngine.Model;
using SteerEngine.Runtime.Cuda.Native;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda.Check;

/// <summary>The measuring steps: the GEMM sweep and the 8B-shape throughput against the device's roofline.</summary>
sealed unsafe partial class GpuCheckSteps
{
    /// <summary>(model, matrix, out, in) of every GEMM a Llama 8B / 70B forward makes (Q/K/V and gate/up fused, as the backend stores them).</summary>
    static readonly (string Model, string Matrix, int Out, int In)[] GemmShapes =
    [
        ("8B", "qkv", 6144, 4096), ("8B", "o", 4096, 4096), ("8B", "gate_up", 28672, 4096), ("8B", "down", 4096, 14336), ("8B", "lm_head", 128256, 4096),
        ("70B", "qkv", 10240, 8192), ("70B", "o", 8192, 8192), ("70B", "gate_up", 57344, 8192), ("70B", "down", 8192, 28672), ("70B", "lm_head", 128256, 8192),
    ];

    /// <summary>The value at index i of a deterministic pseudo-random bf16 matrix (what the sweep uploads and its reference reads).</summary>
    static ushort HashBf16(ulong seed, long i, float scale)
    {
        ulong z = seed * 0x9E3779B97F4A7C15UL + (ulong)i;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return DeviceWeights.ToBf16(((z >> 40) / (float)(1 << 24) * 2 - 1) * scale);
    }

    static DevicePtr UploadHashed(CudaDevice d, long count, ulong seed, float scale)
    {
        DevicePtr p = d.Alloc(count * 2);
        const int Chunk = 1 << 23;
        var buffer = new ushort[Math.Min(count, Chunk)];
        for (long first = 0; first < count; first += Chunk)
        {
            int n = (int)Math.Min(Chunk, count - first);
            Parallel.For(0, n, i => buffer[i] = HashBf16(seed, first + i, scale));
            d.Upload<ushort>(p + first * 2, buffer.AsSpan(0, n));
        }
        return p;
    }

    void GemmSweep(GpuCheckStep step)
    {
        using var d = new DriverCudaDevice(0);
        int shrink = o.Emulate ? 64 : 1;
        var results = new JsonArray();
        foreach ((string model, string matrix, int fullOut, int fullIn) in GemmShapes)
        {
            int outDim = fullOut / shrink, inDim = fullIn / shrink;
            DevicePtr w = UploadHashed(d, (long)outDim * inDim, 1, 1f / MathF.Sqrt(inDim));
            var line = new List<string>();
            foreach (int rows in new[] { 1, 7, 64, 512 })
            {
                DevicePtr x = UploadHashed(d, (long)rows * inDim, 2, 1f);
                DevicePtr y = d.Alloc((long)rows * outDim * 4);
                Linear.Forward(d, x, w, y, rows, outDim, inDim);
                d.Synchronize();
                int reps = o.Emulate ? 1 : 5;
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < reps; i++) Linear.Forward(d, x, w, y, rows, outDim, inDim);
                d.Synchronize();
                double seconds = clock.Elapsed.TotalSeconds / reps;
                double error = SampledGemmError(d, y, rows, outDim, inDim);
                double tflops = 2.0 * rows * outDim * inDim / seconds / 1e12;
                results.Add(new JsonObject
                {
                    ["model"] = model, ["matrix"] = matrix, ["rows"] = rows, ["out"] = outDim, ["in"] = inDim,
                    ["microseconds"] = Math.Round(seconds * 1e6, 1), ["tflops"] = Math.Round(tflops, 3), ["sampled_error"] = error,
                });
                line.Add($"{rows}: {seconds * 1e6:F0} µs {tflops:F1} TF/s");
                if (!(error < 1e-3)) step.Fail($"{model} {matrix} ({outDim}×{inDim}) at {rows} rows: sampled outputs off by {error:E2} of the host reference");
                d.Free(x);
                d.Free(y);
            }
            step.Lines.Add($"{model} {matrix} {outDim}×{inDim}: {string.Join(", ", line)}");
            d.Free(w);
        }
        step.Details["gemms"] = results;
    }

    /// <summary>max over 64 sampled outputs of |y − x·wᵀ| / Σ|x·w| against a host reference in double.</summary>
    static double SampledGemmError(CudaDevice d, DevicePtr y, int rows, int outDim, int inDim)
    {
        var rng = new Random(rows * 31 + outDim);
        var value = new float[1];
        double worst = 0;
        for (int s = 0; s < 64; s++)
        {
            int r = rng.Next(rows), c = rng.Next(outDim);
            d.Download<float>(y + ((long)r * outDim + c) * 4, value);
            double sum = 0, magnitude = 0;
            for (int k = 0; k < inDim; k++)
            {
                double p = (double)DeviceWeights.FromBf16(HashBf16(2, (long)r * inDim + k, 1f)) * DeviceWeights.FromBf16(HashBf16(1, (long)c * inDim + k, 1f / MathF.Sqrt(inDim)));
                sum += p;
                magnitude += Math.Abs(p);
            }
            worst = Math.Max(worst, Math.Abs(value[0] - sum) / Math.Max(magnitude, 1e-30));
        }
        return worst;
    }

    /// <summary>bf16 dense tensor-core FLOP per clock per SM: 4096 on Hopper, 2048 on A100, 1024 on consumer Ampere / Ada.</summary>
    static int TensorFlopsPerClock(int arch) => arch >= 90 ? 4096 : arch == 80 ? 2048 : 1024;

    void Throughput(GpuCheckStep step)
    {
        ModelConfig shape = ModelShapes.Get(o.Emulate ? "tiny" : "llama-3.1-8b");
        string dir = RandomModelDir(o.Emulate ? "tiny" : "llama-3.1-8b", shape);

        double bandwidth, peak;
        using (var d = new DriverCudaDevice(0))
        {
            // Copy probe: the best of a few device-to-device copies (each byte read once and written once).
            long bytes = o.Emulate ? 64L << 20 : 2L << 30;
            DevicePtr a = d.Alloc(bytes), b = d.Alloc(bytes);
            d.Zero(a, bytes);
            double best = double.MaxValue;
            for (int i = 0; i < (o.Emulate ? 2 : 6); i++)
            {
                var clock = Stopwatch.StartNew();
                d.CopyOnDevice(b, a, bytes);
                d.Synchronize();
                best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            bandwidth = 2.0 * bytes / best;
            peak = (double)d.Attribute(CudaDriverApi.AttributeMultiprocessorCount) * d.Attribute(CudaDriverApi.AttributeClockRate) * 1e3 * TensorFlopsPerClock(d.Arch);
        }
        step.Details["copy_bandwidth_gbs"] = Math.Round(bandwidth / 1e9, 1);
        step.Details["bf16_peak_tflops"] = Math.Round(peak / 1e12, 1);
        step.Lines.Add($"roofline: copy probe {bandwidth / 1e9:F0} GB/s, bf16 tensor peak {peak / 1e12:F0} TFLOP/s (from the device's SMs and clock)");

        // Bytes a decode step reads: every matrix once (the embedding is a gather, not a read of the table) plus the KV cache.
        int H = shape.HiddenSize, I = shape.IntermediateSize, V = shape.VocabSize;
        long matrixParams = (long)shape.NumLayers * ((long)H * (shape.QDim + 2 * shape.KvDim) + (long)shape.QDim * H + 3L * H * I) + (long)V * H;
        long kvBytesPerToken = (long)shape.NumLayers * 2 * shape.KvDim * 2;

        using IForwardModel model = Backends.Create("cuda", dir, 1);
        var rng = new Random(11);
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(V)).ToArray();

        int prefill = o.Emulate ? 64 : 512;
        model.Forward([new ForwardSequence(model.NewCache(), Tokens(prefill))]); // warm-up
        var timer = Stopwatch.StartNew();
        model.Forward([new ForwardSequence(model.NewCache(), Tokens(prefill))]);
        double prefillSeconds = timer.Elapsed.TotalSeconds;
        double prefillFraction = 2.0 * matrixParams * prefill / prefillSeconds / peak;
        step.Details["prefill"] = new JsonObject { ["tokens"] = prefill, ["tok_s"] = Math.Round(prefill / prefillSeconds), ["fraction_of_peak"] = Math.Round(prefillFraction, 3) };
        step.Lines.Add($"prefill {prefill}: {prefill / prefillSeconds:F0} tok/s, {prefillFraction:P1} of the bf16 peak");

        foreach ((int batch, bool steered) in new[] { (1, false), (o.Emulate ? 4 : 64, true) })
        {
            const int Prompt = 16;
            int steps = o.Emulate ? 2 : 32;
            var caches = Enumerable.Range(0, batch).Select(_ => model.NewCache(Prompt + steps + 1)).ToArray();
            var steering = Enumerable.Range(0, batch).Select(s => steered
                ? new SequenceSteering([new SteeringAdd(shape.NumLayers / 2, Enumerable.Range(0, H).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), s % 8 - 4)], Prompt)
                : null).ToArray();
            model.Forward(caches.Select((c, s) => new ForwardSequence(c, Tokens(Prompt), steering[s])).ToList());
            model.Forward(caches.Select((c, s) => new ForwardSequence(c, Tokens(1), steering[s])).ToList()); // warm-up step
            timer.Restart();
            for (int i = 0; i < steps; i++) model.Forward(caches.Select((c, s) => new ForwardSequence(c, Tokens(1), steering[s])).ToList());
            double perStep = timer.Elapsed.TotalSeconds / steps;
            double readBytes = matrixParams * 2.0 + (double)batch * (Prompt + 1 + steps / 2.0) * kvBytesPerToken;
            double fraction = readBytes / perStep / bandwidth;
            string name = $"decode_batch_{batch}{(steered ? "_steered" : "")}";
            step.Details[name] = new JsonObject { ["tok_s"] = Math.Round(batch / perStep, 1), ["ms_per_step"] = Math.Round(perStep * 1e3, 3), ["fraction_of_bandwidth"] = Math.Round(fraction, 3) };
            step.Lines.Add($"decode batch {batch}{(steered ? " steered" : "")}: {batch / perStep:F0} tok/s ({perStep * 1e3:F2} ms a step), {fraction:P1} of the copy bandwidth");
        }
    }
}
