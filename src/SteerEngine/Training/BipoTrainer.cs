using System.Diagnostics;
using System.Globalization;
using System.Text;
using SteerEngine.Generation;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Training;

/// <summary>
/// BiPO hyper-parameters. Defaults follow the reference's train.py (β 0.1, lr 5e-4, cosine with 100 warm-up
/// steps, batch 4, AdamW, clipping at 1.0 from the HF Trainer) except weight decay (0 here, 0.05 there) and
/// epochs (20, as in the seed runs).
/// </summary>
public sealed record BipoOptions
{
    public int Epochs { get; init; } = 20;
    public double LearningRate { get; init; } = 5e-4;
    public double Beta { get; init; } = 0.1;
    public int BatchSize { get; init; } = 4;
    public int GradientAccumulation { get; init; } = 1;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; }
    /// <summary>Global gradient-norm clip before each optimizer step, as the HF Trainer the reference runs in does (max_grad_norm 1.0); 0 turns it off.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    public int Seed { get; init; } = 11;
    /// <summary>The weight products' path: packed bf16 (auto / native / managed, <see cref="WeightProducts"/>) or the exact f32 reference.</summary>
    public CpuKernelChoice Kernels { get; init; } = CpuKernelChoice.Auto;
    /// <summary>
    /// Memory a step may spend keeping activations (and, packed, the LM head's softmax) instead of recomputing them: host
    /// memory on the CPU (<see cref="SteeredLogProb"/>), each device's own on CUDA (Training.Cuda.CudaBipoBackend.At).
    /// </summary>
    public long KeepBytes { get; init; } = DefaultKeepBytes;

    /// <summary>The keep budget unless told otherwise: 1 GiB.</summary>
    public const long DefaultKeepBytes = 1L << 30;

    /// <summary>
    /// <see cref="KeepBytes"/> sized from the memory there is: on CUDA, at each batch, each device's free memory less a
    /// margin and the pass's other buffers (Training.Cuda.CudaBipoRank.AutoKeep); on the CPU, the default 1 GiB.
    /// </summary>
    public const long AutoKeep = -1;

    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"epochs must be at least 1 (got {Epochs})");
        if (BatchSize < 1) throw new ArgumentException($"batch size must be at least 1 (got {BatchSize})");
        if (GradientAccumulation < 1) throw new ArgumentException($"gradient accumulation must be at least 1 (got {GradientAccumulation})");
        if (WarmupSteps < 0) throw new ArgumentException($"warm-up steps must be non-negative (got {WarmupSteps})");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"learning rate must be positive (got {LearningRate})");
        if (!(Beta > 0) || !double.IsFinite(Beta)) throw new ArgumentException($"beta must be positive (got {Beta})");
        if (WeightDecay < 0 || MaxGradNorm < 0) throw new ArgumentException("weight decay and max grad norm must be non-negative");
        if (KeepBytes < 0 && KeepBytes != AutoKeep)
            throw new ArgumentException($"the memory kept for the backward must be non-negative or AutoKeep (got {KeepBytes})");
    }
}

/// <summary>One optimizer step, as the progress display shows it.</summary>
public sealed record BipoStep(int Layer, int Epoch, int Step, int TotalSteps, double Loss, double LearningRate, TimeSpan StepTime);

/// <summary>Loss, reward accuracy and reward margin of a set of pairs at one steering direction.</summary>
public sealed record BipoEvaluation(double Loss, double RewardAccuracy, double Margin);

/// <summary>One line of evaluation_metrics.jsonl.</summary>
public sealed record BipoEpochMetrics(int Layer, int Epoch, int Step, double TrainLoss,
    BipoEvaluation TrainPlus, BipoEvaluation TrainMinus, BipoEvaluation TestPlus, BipoEvaluation TestMinus);

/// <summary>
/// Trains BiPO steering vectors (arXiv 2406.00045; semantics of the reference BiPOTrainer): v, zero at the start,
/// is added as h_L += d·v at every position of block L's output, with d ∈ {−1, +1} drawn per batch from the
/// seeded generator; the loss is <see cref="BipoLoss"/> against the unsteered model, whose log-probs are computed
/// once per example. AdamW with a cosine schedule and linear warm-up, gradient accumulation, global-norm clipping.
/// Per epoch (1-based) it writes vec_ep{N}_layer{L}.pt (f32 [H], torch.load-able) and .safetensors, a record in
/// evaluation_metrics.jsonl (loss, reward accuracy and margin on the train and test pairs at d = +1 and d = −1),
/// then train_state_layer{L}.safetensors, from which <c>resume</c> continues after the last completed epoch.
/// <para>
/// Memory (heap; the bf16 weights stay memory-mapped, 16.1 GB for 8.03 B parameters): a step holds the prefix h_L
/// and the inputs of blocks L+1..N−1 plus the last block's output, (N−L+1)·T·H f32, one block's recomputed
/// activations, 4·T·(5H + 4·q_dim + 4·kv_dim + 3I) bytes, three (T, H) gradient buffers and small LM-head scratch
/// (<see cref="SteeredLogProb.PeakBytes"/> adds it up). For the Llama-3.1-8B shape (H 4096, q_dim 4096, kv_dim 1024,
/// I 14336, 32 blocks, V 128256) at sequence length 512 and batch 4, T = 4 pairs × 2 × 512 = 4096 rows, so one
/// (T, H) buffer is 64 MiB: at a middle layer, L = 15: 18 × 64 MiB = 1.13 GiB of saved states, 1.28 GiB of
/// workspace (83 968 floats per row), 192 MiB of gradient buffers, 128 MiB for the ≤ 4096 normed response rows and
/// their gradient, ~16 MiB LM-head scratch: about 2.7 GiB. Worst case, L = 0: 33 × 64 MiB = 2.06 GiB saved, about
/// 3.7 GiB in all; plus what <see cref="BipoOptions.KeepBytes"/> lets a step keep instead of recomputing (1 GiB by
/// default; 0 gives the figures above). The GPU plan for 8B and 70B is docs/bipo-at-scale.md. PyTorch autograd on the same step keeps every steered block's activations instead, and
/// (T, V) logits and their log-softmax, 2 GiB each at T = 4096.
/// </para>
/// </summary>
public sealed class BipoTrainer : IDisposable
{
    public const string MetricsFileName = "evaluation_metrics.jsonl";

    /// <summary>Every pass runs here: the CPU's weight products (packed on first use and kept for the trainer's life) or CUDA devices.</summary>
    readonly IBipoBackend _backend;
    readonly ModelConfig _config;

    /// <summary>BiPO on the CPU, its weight products on <see cref="BipoOptions.Kernels"/>.</summary>
    public BipoTrainer(Transformer model, BipoOptions options) : this(new CpuBipoBackend(model, options.Kernels), options) { }

    /// <summary>BiPO on <paramref name="backend"/>, which the trainer owns from here on.</summary>
    public BipoTrainer(IBipoBackend backend, BipoOptions options)
    {
        _backend = backend;
        _config = backend.Config;
        Options = options;
    }

    /// <summary>"exact", "native", "managed", "cuda" or "cuda-emu": where the weight products run.</summary>
    public string Kernels => _backend.Kernels;

    public void Dispose() => _backend.Dispose();

    public BipoOptions Options { get; }

    public static string VectorPath(string outDir, int epoch, int layer, string extension = ".pt") =>
        Path.Combine(outDir, $"vec_ep{epoch}_layer{layer}{extension}");

    /// <summary>Optimizer steps per epoch: ⌈⌈pairs / batch⌉ / accumulation⌉ (a partial accumulation at an epoch's end still steps).</summary>
    public int StepsPerEpoch(int pairs) =>
        ((pairs + Options.BatchSize - 1) / Options.BatchSize + Options.GradientAccumulation - 1) / Options.GradientAccumulation;

    /// <summary>
    /// Trains one vector per layer in turn, skipping layers whose state shows every epoch done. Without
    /// <paramref name="resume"/> the output directory must not hold an earlier run.
    /// </summary>
    public void Run(IReadOnlyList<int> layers, IReadOnlyList<PreferencePair> train, IReadOnlyList<PreferencePair> test,
        string outDir, bool resume, Action<BipoStep>? onStep = null, Action<BipoEpochMetrics>? onEpoch = null, Action<string>? log = null)
    {
        Options.Validate();
        foreach (int layer in layers)
            if (layer < 0 || layer >= _config.NumLayers)
                throw new ArgumentException($"layer {layer} is out of range: the model has blocks 0..{_config.NumLayers - 1}");
        Directory.CreateDirectory(outDir);
        string metricsPath = Path.Combine(outDir, MetricsFileName);
        if (!resume && (File.Exists(metricsPath) || layers.Any(l => File.Exists(TrainingState.PathFor(outDir, l)))))
            throw new IOException($"{outDir}: holds an earlier training run; pass --resume to continue it, or choose another --out");

        double[]? trainRef = null, testRef = null;
        using JsonlOutput metrics = JsonlOutput.Open(metricsPath, resume: true, out HashSet<string> done);
        foreach (int layer in layers)
        {
            TrainingState? state = LoadState(outDir, layer, resume);
            if (state is not null && state.Epoch >= Options.Epochs)
            {
                log?.Invoke($"layer {layer}: complete ({state.Epoch} epochs), skipped");
                continue;
            }
            trainRef ??= ReferenceLogProbs(train);
            testRef ??= ReferenceLogProbs(test);
            TrainLayer(layer, train, trainRef, test, testRef, outDir, state, metrics, done, onStep, onEpoch);
        }
    }

    /// <summary>(2·pairs) the unsteered model's summed response log-probs, (chosen, rejected) per pair.</summary>
    public double[] ReferenceLogProbs(IReadOnlyList<PreferencePair> pairs)
    {
        ISteeredModel top = _backend.At(_config.NumLayers - 1);
        var result = new double[2 * pairs.Count];
        for (int first = 0; first < pairs.Count; first += Options.BatchSize)
        {
            int n = Math.Min(Options.BatchSize, pairs.Count - first);
            ISteeredBatch batch = top.Prepare(Sequences(pairs, Enumerable.Range(first, n)));
            BipoObjective.ReferenceLogProbs(batch, _config.HiddenSize).CopyTo(result, 2 * first);
        }
        return result;
    }

    /// <summary>Loss, reward accuracy and margin of <paramref name="pairs"/> steered by direction·v at <paramref name="layer"/>.</summary>
    public (BipoEvaluation Plus, BipoEvaluation Minus) Evaluate(int layer, float[] vector, IReadOnlyList<PreferencePair> pairs, double[] refLogProbs)
    {
        ISteeredModel steered = _backend.At(layer);
        var sums = new double[2, 3];
        for (int first = 0; first < pairs.Count; first += Options.BatchSize)
        {
            int n = Math.Min(Options.BatchSize, pairs.Count - first);
            ISteeredBatch batch = steered.Prepare(Sequences(pairs, Enumerable.Range(first, n)));
            for (int k = 0; k < 2; k++)
            {
                int direction = k == 0 ? 1 : -1;
                BipoBatchResult r = BipoObjective.Evaluate(batch, vector, direction, Options.Beta,
                    refLogProbs.AsSpan(2 * first, 2 * n), []);
                foreach (PairLogProbs p in r.Pairs)
                {
                    double chosen = BipoLoss.ChosenReward(p, Options.Beta), rejected = BipoLoss.RejectedReward(p, Options.Beta);
                    sums[k, 0] += BipoLoss.Pair(p, Options.Beta, direction).Loss;
                    sums[k, 1] += chosen > rejected ? 1 : 0;
                    sums[k, 2] += chosen - rejected;
                }
            }
        }
        BipoEvaluation At(int k) => new(sums[k, 0] / pairs.Count, sums[k, 1] / pairs.Count, sums[k, 2] / pairs.Count);
        return (At(0), At(1));
    }

    /// <summary>
    /// Trains one vector at <paramref name="layer"/> in memory, as <see cref="Run"/> does but writing no files and
    /// evaluating nothing between epochs, and returns it. (H)
    /// </summary>
    public float[] Train(int layer, IReadOnlyList<PreferencePair> train, Action<BipoStep>? onStep = null)
    {
        Options.Validate();
        if (layer < 0 || layer >= _config.NumLayers)
            throw new ArgumentException($"layer {layer} is out of range: the model has blocks 0..{_config.NumLayers - 1}");
        if (train.Count == 0) throw new ArgumentException("BiPO training needs at least one preference pair");
        ISteeredModel slp = _backend.At(layer, Options.KeepBytes);
        var vector = new float[_config.HiddenSize];
        var adam = new AdamW(vector.Length, Options.WeightDecay);
        double[] trainRef = ReferenceLogProbs(train);
        for (int epoch = 1; epoch <= Options.Epochs; epoch++)
            RunEpoch(slp, epoch, train, trainRef, vector, adam, onStep);
        return vector;
    }

    void TrainLayer(int layer, IReadOnlyList<PreferencePair> train, double[] trainRef, IReadOnlyList<PreferencePair> test, double[] testRef,
        string outDir, TrainingState? state, JsonlOutput metrics, HashSet<string> done, Action<BipoStep>? onStep, Action<BipoEpochMetrics>? onEpoch)
    {
        ISteeredModel slp = _backend.At(layer, Options.KeepBytes);
        var vector = new float[_config.HiddenSize];
        var adam = new AdamW(vector.Length, Options.WeightDecay);
        int startEpoch = 1;
        if (state is not null)
        {
            state.Vector.CopyTo(vector, 0);
            state.AdamM.CopyTo(adam.M, 0);
            state.AdamS.CopyTo(adam.S, 0);
            adam.Step = state.Step;
            startEpoch = state.Epoch + 1;
        }
        for (int epoch = startEpoch; epoch <= Options.Epochs; epoch++)
        {
            double trainLoss = RunEpoch(slp, epoch, train, trainRef, vector, adam, onStep);
            var (trainPlus, trainMinus) = Evaluate(layer, vector, train, trainRef);
            var (testPlus, testMinus) = Evaluate(layer, vector, test, testRef);
            var m = new BipoEpochMetrics(layer, epoch, adam.Step, trainLoss, trainPlus, trainMinus, testPlus, testMinus);
            WriteEpoch(outDir, layer, epoch, vector, adam, m, metrics, done);
            onEpoch?.Invoke(m);
        }
    }

    /// <summary>One epoch (1-based) of optimizer steps on <paramref name="vector"/>; returns the mean batch loss.</summary>
    double RunEpoch(ISteeredModel slp, int epoch, IReadOnlyList<PreferencePair> train, double[] trainRef, float[] vector, AdamW adam,
        Action<BipoStep>? onStep)
    {
        BipoOptions o = Options;
        int totalSteps = StepsPerEpoch(train.Count) * o.Epochs;
        int batches = (train.Count + o.BatchSize - 1) / o.BatchSize;
        var grad = new float[vector.Length];

        // Everything random in an epoch comes from (seed, epoch), so a resumed run repeats it exactly.
        var rng = new SplitMix64(SplitMix64.Hash((ulong)o.Seed) ^ (ulong)epoch);
        int[] order = Enumerable.Range(0, train.Count).ToArray();
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.Next() % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        double epochLoss = 0;
        var clock = Stopwatch.StartNew();
        double accumulatedLoss = 0;
        int inGroup = 0;
        for (int b = 0; b < batches; b++)
        {
            int[] members = order.Skip(b * o.BatchSize).Take(o.BatchSize).ToArray();
            int direction = (rng.Next() >> 63) == 0 ? -1 : 1;
            ISteeredBatch batch = slp.Prepare(Sequences(train, members));
            double[] refs = members.SelectMany(i => new[] { trainRef[2 * i], trainRef[2 * i + 1] }).ToArray();
            BipoBatchResult r = BipoObjective.Evaluate(batch, vector, direction, o.Beta, refs, grad,
                1.0 / o.GradientAccumulation);
            epochLoss += r.Loss;
            accumulatedLoss += r.Loss / o.GradientAccumulation;
            inGroup++;
            if (inGroup < o.GradientAccumulation && b < batches - 1) continue;

            ClipGradient(grad, o.MaxGradNorm);
            double lr = o.LearningRate * CosineSchedule.Factor(adam.Step, o.WarmupSteps, totalSteps);
            adam.Update(vector, grad, lr);
            Array.Clear(grad);
            onStep?.Invoke(new BipoStep(slp.Layer, epoch, adam.Step, totalSteps, accumulatedLoss, lr, clock.Elapsed));
            clock.Restart();
            accumulatedLoss = 0;
            inGroup = 0;
        }
        return epochLoss / batches;
    }

    void WriteEpoch(string outDir, int layer, int epoch, float[] vector, AdamW adam, BipoEpochMetrics m, JsonlOutput metrics, HashSet<string> done)
    {
        // Order matters for --resume: vectors, then the metrics record, then the state that marks the epoch done.
        var steering = SteeringVector.Direction((float[])vector.Clone(), $"bipo layer {layer} epoch {epoch}");
        VectorFile.Write(VectorPath(outDir, epoch, layer), steering);
        VectorFile.Write(VectorPath(outDir, epoch, layer, ".safetensors"), steering);
        string id = $"layer{layer}_epoch{epoch}";
        if (done.Add(CallerId.Key(id)))
        {
            metrics.Append(Encoding.UTF8.GetBytes(JsonlOutput.ToLine(w =>
            {
                w.WriteString("id", id);
                w.WriteNumber("layer", layer);
                w.WriteNumber("epoch", epoch);
                w.WriteNumber("step", m.Step);
                w.WriteNumber("seed", Options.Seed);
                w.WriteNumber("beta", Options.Beta);
                w.WriteString("vector", Path.GetFileName(VectorPath(outDir, epoch, layer)));
                w.WriteNumber("train_loss", m.TrainLoss);
                foreach (var (name, e) in new[] { ("train_pos", m.TrainPlus), ("train_neg", m.TrainMinus), ("test_pos", m.TestPlus), ("test_neg", m.TestMinus) })
                {
                    w.WriteNumber($"{name}_loss", e.Loss);
                    w.WriteNumber($"{name}_reward_accuracy", e.RewardAccuracy);
                    w.WriteNumber($"{name}_margin", e.Margin);
                }
            })));
            metrics.Flush();
        }
        new TrainingState(layer, epoch, adam.Step, vector, adam.M, adam.S, Settings()).Write(TrainingState.PathFor(outDir, layer));
    }

    /// <summary>The settings a resumed run must share with the run it continues.</summary>
    Dictionary<string, string> Settings() => new()
    {
        ["hidden_size"] = _config.HiddenSize.ToString(CultureInfo.InvariantCulture),
        ["epochs"] = Options.Epochs.ToString(CultureInfo.InvariantCulture),
        ["batch_size"] = Options.BatchSize.ToString(CultureInfo.InvariantCulture),
        ["grad_accum"] = Options.GradientAccumulation.ToString(CultureInfo.InvariantCulture),
        ["seed"] = Options.Seed.ToString(CultureInfo.InvariantCulture),
        ["warmup"] = Options.WarmupSteps.ToString(CultureInfo.InvariantCulture),
        ["lr"] = Options.LearningRate.ToString("R", CultureInfo.InvariantCulture),
        ["beta"] = Options.Beta.ToString("R", CultureInfo.InvariantCulture),
    };

    TrainingState? LoadState(string outDir, int layer, bool resume)
    {
        string path = TrainingState.PathFor(outDir, layer);
        if (!resume || !File.Exists(path)) return null;
        TrainingState state = TrainingState.Read(path);
        if (state.Layer != layer) throw new InvalidDataException($"{path}: holds layer {state.Layer}, expected {layer}");
        foreach (var (key, value) in Settings())
        {
            if (key == "epochs" && state.Epoch >= Options.Epochs) continue; // a finished layer is skipped whatever --epochs says
            if (!state.Settings.TryGetValue(key, out string? saved) || saved != value)
                throw new ArgumentException($"{path}: was trained with {key} = {saved ?? "(none)"}; this run has {value} (resume needs the same settings)");
        }
        return state;
    }

    static void ClipGradient(Span<float> grad, double maxNorm)
    {
        if (maxNorm <= 0) return;
        double sq = 0;
        foreach (float g in grad) sq += (double)g * g;
        double coef = maxNorm / (Math.Sqrt(sq) + 1e-6);
        if (coef >= 1) return;
        for (int i = 0; i < grad.Length; i++) grad[i] = (float)(grad[i] * coef);
    }

    static List<ScoredSequence> Sequences(IReadOnlyList<PreferencePair> pairs, IEnumerable<int> members)
    {
        var list = new List<ScoredSequence>();
        foreach (int i in members)
        {
            list.Add(pairs[i].ChosenSequence);
            list.Add(pairs[i].RejectedSequence);
        }
        return list;
    }
}
