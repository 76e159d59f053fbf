using System.Globalization;
using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Training;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/SteerEngine.Benchmarks -- bipo-keep [--shape tiny] [--layer 0] [--tp 1]
/// [--prompt-len 64] [--response-len 16]</c>.
/// What the CUDA backward's keep budget changes, counted on the emulator (no time: the emulator's speed says nothing of
/// a GPU's): one BiPO step with no budget, with room for one block and with the trainer's default, each on freshly
/// loaded devices — the blocks kept, the block forwards the step runs (prefix, steered forward, the backward's
/// recomputes), the kernel launches and GEMMs, the peak workspace bytes per device, and whether the gradient's bits
/// equal the no-budget step's. Then the keep arithmetic for the 8B and 70B shapes at the GPU plan's 4096 rows.
/// </summary>
public static class BipoKeepCount
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        int Int(string name, int fallback) => int.Parse(Arg(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        if (!EmulatedCudaDevice.IsAvailable) throw new InvalidOperationException("native/cuemu is not built (run ./build.sh)");
        string shape = Arg("--shape", "tiny");
        int layer = Int("--layer", 0), tp = Int("--tp", 1), promptLen = Int("--prompt-len", 64), responseLen = Int("--response-len", 16);
        ModelConfig c = ModelShapes.Get(shape);
        string dir = RandomModel.Cached(c, 1, Path.Combine(Path.GetTempPath(), $"steer-bench-{shape}"));
        if (layer < 0 || layer >= c.NumLayers) throw new ArgumentException($"--layer {layer}: the model has blocks 0..{c.NumLayers - 1}");

        var rng = new Random(1);
        var sequences = new List<ScoredSequence>();
        for (int i = 0; i < 4; i++)
        {
            int[] prompt = Enumerable.Range(0, promptLen).Select(_ => rng.Next(c.VocabSize)).ToArray();
            for (int side = 0; side < 2; side++)
                sequences.Add(new ScoredSequence([.. prompt, .. Enumerable.Range(0, responseLen).Select(_ => rng.Next(c.VocabSize))], promptLen));
        }
        float[] vector = Enumerable.Range(0, c.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.1f).ToArray();
        ScoredSequence[] batch = [.. sequences];
        long rows = batch.Sum(s => s.Tokens.Length);
        int upper = c.NumLayers - 1 - layer;
        long block = CudaBipoBackend.KeptBlockBytes(c, tp, rows);
        Console.WriteLine($"{shape} (H {c.HiddenSize}, {c.NumLayers} blocks) on {tp} emulated device(s), layer {layer}: {upper} upper blocks, " +
                          $"{rows} rows; one kept block {block} bytes per device");
        Console.WriteLine("budget per device        kept  block forwards/step  recomputed  launches/step  peak workspace/device  gradient");

        float[]? reference = null;
        foreach ((string name, long keep) in new[] { ("0", 0L), ("one block", block), ("default (1 GiB)", new BipoOptions().KeepBytes) })
        {
            using CudaBipoBackend backend = CudaBipoBackend.Load(dir, CudaPlatform.Emulated, tp);
            double[] refs = BipoObjective.ReferenceLogProbs(backend.At(c.NumLayers - 1).Prepare(batch), c.HiddenSize);
            long launches = backend.Launches, recomputed = backend.RecomputedBlocks;
            var grad = new float[c.HiddenSize];
            BipoObjective.Evaluate(backend.At(layer, keep).Prepare(batch), vector, 1, 0.1, refs, grad);
            launches = backend.Launches - launches;
            recomputed = (backend.RecomputedBlocks - recomputed) / tp;
            reference ??= grad;
            bool same = grad.Select(BitConverter.SingleToInt32Bits).SequenceEqual(reference.Select(BitConverter.SingleToInt32Bits));
            Console.WriteLine($"{name,-24} {backend.KeptBlocks,4}  {layer + 1 + upper + recomputed,19}  {recomputed,10}  {launches / tp,13}  " +
                              $"{backend.PeakDeviceBytes().Workspace,21}  {(same ? "same bits" : "DIFFERS")}");
            if (!same) return 1;
        }

        Console.WriteLine();
        Console.WriteLine("the GPU plan's shapes at 4096 rows (docs/bipo-at-scale.md): one kept block per device, and what 1 GiB keeps");
        ModelConfig b8 = ModelShapes.Get("llama-3.1-8b");
        var b70 = new ModelConfig
        {
            Arch = ModelArch.Llama, HiddenSize = 8192, IntermediateSize = 28672, NumLayers = 80, NumHeads = 64, NumKvHeads = 8,
            HeadDim = 128, VocabSize = b8.VocabSize, RmsNormEps = b8.RmsNormEps, RopeTheta = b8.RopeTheta,
        };
        foreach ((string name, ModelConfig m, int gpus) in new[] { ("llama-3.1-8b", b8, 1), ("llama-3.1-70b", b70, 4), ("llama-3.1-70b", b70, 8) })
        {
            long bytes = CudaBipoBackend.KeptBlockBytes(m, gpus, 4096);
            Console.WriteLine($"{name}, TP {gpus}: {bytes / (double)(1 << 20):F0} MiB a block per device; 1 GiB keeps {(1L << 30) / bytes} block(s) beside the top one");
        }
        return 0;
    }
}
