using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cuda.Native;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda.Check;

/// <summary>The steps of <see cref="GpuCheck"/>, in the order they run. Shapes shrink when emulated.</summary>
sealed unsafe partial class GpuCheckSteps(GpuCheckOptions o, TextWriter log)
{
    public const string DeviceStep = "device and compile";
    const double Bf16Tolerance = 2e-2;

    public IEnumerable<(string Name, Action<GpuCheckStep> Body)> All() =>
    [
        (DeviceStep, Device),
        ("kernel and GEMM tests on the device", KernelTests),
        ("mma layout probe", MmaProbe),
        ("GEMM sweep (8B and 70B shapes)", GemmSweep),
        ("end to end, TP = 1, against the CPU backend", s => EndToEnd(s, 1)),
        ("device sampling and reduced capture, TP = 1", s => DeviceSide(s, 1)),
        ("8B-shape throughput against the roofline", Throughput),
        ("decode graphs and paged KV against direct launches", DecodeGraphsAndPages),
        ("one BiPO step on the 8B shape", BipoStep),
        ("tensor parallel, TP = 2", TensorParallel),
    ];

    static int DeviceCount()
    {
        int n;
        CudaDriverApi.Check(CudaDriverApi.cuInit(0), "cuInit");
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetCount(&n), "cuDeviceGetCount");
        return n;
    }

    /// <summary>The block size the backend launches a kernel with at most.</summary>
    static int LaunchThreads(string kernel) => kernel switch
    {
        "attention_decode_combine" or "mma_probe" => 32,
        _ when kernel.StartsWith("attention_") => 128,
        "sample_rows" or "top_k_cut_rows" or "top_logprobs_rows" or "repetition_penalty_rows" or "join_vocab_slices" or "sum_rows_by_mask" => 256,
        _ => 1024, // CudaTransformer.Threads: up to 1024 for the row kernels
    };

    void Device(GpuCheckStep step)
    {
        int version, count = DeviceCount();
        CudaDriverApi.Check(CudaDriverApi.cuDriverGetVersion(&version), "cuDriverGetVersion");
        step.Details["driver_version"] = version;
        step.Details["nvrtc_version"] = $"{NvrtcCompiler.Version().Major}.{NvrtcCompiler.Version().Minor}";
        step.Lines.Add($"driver {version / 1000}.{version % 1000 / 10}, NVRTC {step.Details["nvrtc_version"]}, {count} device(s)");
        var clock = Stopwatch.StartNew();
        using var d = new DriverCudaDevice(0);
        step.Details["compile_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 2);
        nuint memory;
        CudaDriverApi.Check(CudaDriverApi.cuDeviceTotalMem_v2(&memory, d.Ordinal), "cuDeviceTotalMem");
        step.Details["device"] = d.Name;
        step.Details["sm"] = d.Arch;
        step.Details["multiprocessors"] = d.Attribute(CudaDriverApi.AttributeMultiprocessorCount);
        step.Details["memory_gib"] = Math.Round(memory / (double)(1L << 30), 1);
        step.Lines.Add($"{d.Name}: sm_{d.Arch}, {step.Details["multiprocessors"]} SMs, {step.Details["memory_gib"]} GiB; kernels compiled (or loaded from the cache) in {step.Details["compile_seconds"]} s");
        var kernels = new JsonObject();
        foreach (string kernel in KernelNames())
        {
            (int registers, int maxThreads) = d.KernelLimits(kernel);
            int launch = LaunchThreads(kernel);
            kernels[kernel] = new JsonObject { ["registers"] = registers, ["max_threads"] = maxThreads, ["launch_threads"] = launch };
            if (maxThreads < launch) step.Fail($"{kernel}: at most {maxThreads} threads per block with {registers} registers, launched with {launch}");
        }
        step.Details["kernels"] = kernels;
        step.Lines.Add($"{kernels.Count} kernels: registers {string.Join(", ", kernels.Select(k => $"{k.Key} {k.Value!["registers"]}"))}");
    }

    /// <summary>Every kernel of kernels/*.cu; a name pasted from a head-dim macro parameter (name##HD) is one kernel per head dim.</summary>
    static IEnumerable<string> KernelNames() =>
        KernelSources.Files.Values.SelectMany(s => KernelName().Matches(s)).SelectMany(m => m.Groups[2].Success
            ? new[] { 32, 64, 128 }.Select(hd => m.Groups[1].Value + hd)
            : [m.Groups[1].Value]).Order();

    [GeneratedRegex(@"extern ""C"" __global__ void (\w+?)(##HD)?\s*\(")] private static partial Regex KernelName();

    void KernelTests(GpuCheckStep step)
    {
        if (o.TestAssembly is null || !File.Exists(o.TestAssembly))
        {
            step.Status = "skipped";
            step.Lines.Add($"no test assembly ({o.TestAssembly ?? "--tests not given"}); ./build.sh gpu-check passes it");
            return;
        }
        string filter = "FullyQualifiedName~SteerEngine.Tests.Cuda.KernelTests|FullyQualifiedName~SteerEngine.Tests.Cuda.GemmTests";
        var env = new Dictionary<string, string> { ["STEER_TEST_DEVICE"] = "driver", ["CUDA_LAUNCH_BLOCKING"] = "1" };
        RunTests(step, "tests", "dotnet", ["test", o.TestAssembly, "--filter", filter], env);
        string? sanitizer = o.Emulate ? null : FindOnPath("compute-sanitizer");
        if (sanitizer is null)
        {
            step.Lines.Add(o.Emulate ? "compute-sanitizer: not run on the emulator (its own checks ran with the tests)" : "compute-sanitizer: not installed, skipped");
            return;
        }
        foreach (string tool in new[] { "memcheck", "racecheck", "synccheck" })
            RunTests(step, tool, sanitizer, ["--tool", tool, "--target-processes", "all", "--error-exitcode", "97", "dotnet", "test", o.TestAssembly, "--filter", filter], env);
    }

    void RunTests(GpuCheckStep step, string label, string program, string[] args, Dictionary<string, string> env)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        foreach ((string k, string v) in env) start.Environment[k] = v;
        using Process p = Process.Start(start)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string summary = Regex.Match(output, @"(Passed|Failed)!.*").Value.Trim();
        step.Details[label] = new JsonObject { ["exit_code"] = p.ExitCode, ["summary"] = summary };
        step.Lines.Add($"{label}: {(summary.Length > 0 ? summary : "exit code " + p.ExitCode)}");
        if (p.ExitCode != 0)
        {
            string tail = string.Join(" | ", (output + stderr.Result).Split('\n').Where(l => l.Contains("Failed ") || l.Contains("ERROR") || l.Contains("error")).Take(8));
            step.Fail($"{label} exited with {p.ExitCode}: {tail}");
        }
    }

    static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);

    void MmaProbe(GpuCheckStep step)
    {
        using var d = new DriverCudaDevice(0);
        var rng = new Random(3);
        float[] a = RoundedBf16(rng, 16 * 16), b = RoundedBf16(rng, 16 * 8), c = RoundedBf16(rng, 16 * 8);
        DevicePtr result = d.Alloc(16 * 8 * 4);
        d.Launch("mma_probe", new Dim3(1), new Dim3(32), d.AllocUpload<ushort>(a.Select(DeviceWeights.ToBf16).ToArray()),
            d.AllocUpload<ushort>(b.Select(DeviceWeights.ToBf16).ToArray()), d.AllocUpload<float>(c), result);
        var got = new float[16 * 8];
        var want = new float[16 * 8];
        d.Download<float>(result, got);
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double sum = c[i * 8 + j];
                for (int k = 0; k < 16; k++) sum += (double)a[i * 16 + k] * b[k * 8 + j];
                want[i * 8 + j] = (float)sum;
            }
        double error = RelativeMaxError(got, want);
        step.Details["relative_error"] = error;
        step.Lines.Add($"m16n8k16 bf16 fragments as kernels/common.cuh documents them: relative error {error:E1}");
        if (!(error < 1e-5)) step.Fail($"the mma.sync fragment layout differs from kernels/common.cuh (relative error {error:E2})");
    }

    static float[] RoundedBf16(Random rng, int n) =>
        Enumerable.Range(0, n).Select(_ => DeviceWeights.FromBf16(DeviceWeights.ToBf16((float)(rng.NextDouble() * 2 - 1)))).ToArray();

    public static double RelativeMaxError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double diff = 0, scale = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs((double)actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }
        return diff / Math.Max(scale, 1e-30);
    }

    /// <summary>A model directory under the output folder, written once (random weights, seed 1).</summary>
    string RandomModelDir(string name, ModelConfig config)
    {
        return RandomModel.Cached(config, 1, Path.Combine(o.OutDir, "models", name),
            _ => log.WriteLine($"   writing the random model {name} ({config.NumLayers} layers, hidden {config.HiddenSize})"));
    }

    /// <summary>Llama-3.1-70B's dimensions with only a few layers: hidden 8192, 64 query / 8 KV heads.</summary>
    static ModelConfig Llama70BDimensions(int layers)
    {
        ModelConfig b = ModelShapes.Get("llama-3.1-8b");
        return new ModelConfig
        {
            Arch = b.Arch, HiddenSize = 8192, IntermediateSize = 28672, NumLayers = layers, NumHeads = 64, NumKvHeads = 8, HeadDim = 128,
            VocabSize = b.VocabSize, RmsNormEps = b.RmsNormEps, RopeTheta = b.RopeTheta, RopeScaling = b.RopeScaling,
            BosTokenId = b.BosTokenId, EosTokenIds = b.EosTokenIds,
        };
    }

    void EndToEnd(GpuCheckStep step, int tp)
    {
        ModelConfig shape = o.Emulate ? ModelShapes.Get("tiny") : Llama70BDimensions(2);
        string dir = RandomModelDir(o.Emulate ? "tiny" : "llama-70b-dimensions-2-layers", shape);
        using IForwardModel cpu = Backends.Create("cpu", dir);
        using IForwardModel gpu = Backends.Create("cuda", dir, tp);
        ModelConfig c = cpu.Config;
        var rng = new Random(7);
        int[] prompt = Enumerable.Range(0, 24).Select(_ => rng.Next(c.VocabSize)).ToArray();
        float[] Vector(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * 0.5f).ToArray();
        // A plain add at the block output, and at the attention output (attn_z) a whole-row
        // add_normalized (under TP the ranks gather their heads for it) and a set on the last head
        // (which the last rank holds).
        var steering = new SequenceSteering(
        [
            new SteeringAdd(c.NumLayers / 2, Vector(c.HiddenSize), 4f),
            new SteeringAdd(0, Vector(c.QDim), 4f) { Hook = SteeringHook.AttnZ, Op = SteeringOp.AddNormalized },
            new SteeringAdd(0, Vector(c.HeadDim), 0f) { Hook = SteeringHook.AttnZ, Head = c.NumHeads - 1, Op = SteeringOp.Set, Value = 2f },
        ], prompt.Length);
        var cpuSink = new HiddenStateRecorder(c.NumLayers + 1, c.HiddenSize);
        var gpuSink = new HiddenStateRecorder(c.NumLayers + 1, c.HiddenSize);
        KvCache cpuCache = cpu.NewCache(), gpuCache = gpu.NewCache();
        float[] want = cpu.Forward([new ForwardSequence(cpuCache, prompt, steering, allLogits: true)], cpuSink)[0];
        float[] got = gpu.Forward([new ForwardSequence(gpuCache, prompt, steering, allLogits: true)], gpuSink)[0];
        double logits = RelativeMaxError(got, want), states = 0;
        for (int e = 0; e <= c.NumLayers; e++) states = Math.Max(states, RelativeMaxError(gpuSink.Get(e, 0), cpuSink.Get(e, 0)));
        double decode = 0;
        for (int i = 0; i < 2; i++)
        {
            int[] next = [rng.Next(c.VocabSize)];
            decode = Math.Max(decode, RelativeMaxError(gpu.Forward([new ForwardSequence(gpuCache, next, steering)])[0],
                cpu.Forward([new ForwardSequence(cpuCache, next, steering)])[0]));
        }
        step.Details["steered_prefill_logits_error"] = logits;
        step.Details["captured_states_error"] = states;
        step.Details["decode_logits_error"] = decode;
        step.Lines.Add($"{c.NumLayers} layers, hidden {c.HiddenSize}, steered (resid_post, attn_z): prefill logits {logits:E1}, captured states {states:E1}, decode logits {decode:E1} (bound {Bf16Tolerance})");
        if (!(Math.Max(logits, Math.Max(states, decode)) < Bf16Tolerance)) step.Fail($"the CUDA backend differs from the CPU backend by more than {Bf16Tolerance}");
    }

    void TensorParallel(GpuCheckStep step)
    {
        int count = DeviceCount();
        if (count < 2)
        {
            step.Status = "skipped";
            step.Lines.Add($"{count} device: tensor parallelism needs two");
            return;
        }
        EndToEnd(step, 2);
        DeviceSide(step, 2);
        using var d0 = new DriverCudaDevice(0);
        using var d1 = new DriverCudaDevice(1);
        using var nccl = new NcclCollectives([d0, d1]);
        DriverCudaDevice[] devices = [d0, d1];
        var timings = new JsonObject();
        foreach (int rows in new[] { 1, 64, 512 })
        {
            long count32 = (long)rows * (o.Emulate ? 128 : 8192);
            DevicePtr[] buffers = devices.Select(d => d.Alloc(count32 * 4)).ToArray();
            foreach ((DriverCudaDevice d, DevicePtr p) in devices.Zip(buffers)) d.Zero(p, count32 * 4);
            int reps = o.Emulate ? 2 : 20;
            var clock = Stopwatch.StartNew();
            Parallel.For(0, 2, rank =>
            {
                for (int i = 0; i < reps; i++) nccl.AllReduceSum(rank, buffers[rank], buffers[rank], count32);
                devices[rank].Synchronize();
            });
            double us = clock.Elapsed.TotalMicroseconds / reps;
            timings[$"rows_{rows}"] = new JsonObject { ["floats"] = count32, ["microseconds"] = Math.Round(us, 1) };
            step.Lines.Add($"all-reduce of {rows} × hidden f32 ({count32 * 4 / 1024.0:F1} KiB): {us:F1} µs");
            foreach ((DriverCudaDevice d, DevicePtr p) in devices.Zip(buffers)) d.Free(p);
        }
        step.Details["all_reduce"] = timings;
    }
}
