using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Training.Cuda;

/// <summary>
/// BiPO on CUDA devices: <c>tp · dp</c> devices, device r = replica · tp + tensor rank. Each data-parallel replica
/// is a tensor-parallel group holding the whole model (sliced as the inference forward slices it) and takes a
/// contiguous share of each batch's pairs; its ranks run <see cref="CudaBipoRank"/> on their own host threads.
/// The vector's gradient is all-reduced over the replicas on the devices, so every rank holds the same bits; the
/// trainer then takes one optimizer step on the host, so the vector and the AdamW state are one and the same for
/// every rank (a multi-process launch would run that step on each rank with identical inputs).
/// </summary>
public sealed class CudaBipoBackend : IBipoBackend
{
    readonly CudaBipoRank[] _ranks;
    readonly CudaCollectives?[] _groups; // the tensor groups (one per replica), then the data groups (one per tensor rank)
    readonly RankWorkers _workers;
    Exception? _aborted;
    object? _batch, _pass; // the batch whose prefix the devices hold, and the pass whose activations they hold

    CudaBipoBackend(ModelConfig config, CudaBipoRank[] ranks, CudaCollectives?[] groups, int tensorParallel, int dataParallel, string kernels)
    {
        Config = config;
        _ranks = ranks;
        _groups = groups;
        TensorParallel = tensorParallel;
        DataParallel = dataParallel;
        Kernels = kernels;
        _workers = new RankWorkers(ranks.Select(r => r.Device.Name).ToArray(), () =>
        {
            foreach (CudaCollectives? g in _groups) g?.Abort();
        });
    }

    public string Kernels { get; }
    public ModelConfig Config { get; }
    public int TensorParallel { get; }
    public int DataParallel { get; }

    /// <summary>The largest buffer bytes any one device held at the end of a pass, and the bytes of its weights.</summary>
    public (long Workspace, long Weights) PeakDeviceBytes() =>
        (_ranks.Max(r => r.PeakWorkspaceBytes), WeightBytes(Config, _ranks[0].Shape));

    /// <summary>Each device's free and total memory now, in bytes (cuMemGetInfo), in rank order.</summary>
    public (long Free, long Total)[] DeviceMemory() => _ranks.Select(r => r.Device.MemoryInfo()).ToArray();

    /// <summary>Block forwards the backward ran to recompute activations it had not kept, summed over the devices, since the load.</summary>
    public long RecomputedBlocks => _ranks.Sum(r => r.RecomputedBlocks);

    /// <summary>Kernel launches and GEMMs issued on all the devices since the load.</summary>
    public long Launches => _ranks.Sum(r => r.Device.Launches);

    /// <summary>The most upper blocks any device keeps the activations of for the last prepared batch (the lowest ones).</summary>
    public int KeptBlocks => _ranks.Max(r => r.KeptBlocks);

    /// <summary>
    /// The keep budget per device of the last batch prepared with one (not 0; passes that only evaluate keep nothing) and
    /// the most lowest upper blocks a device kept for it: the budget given, or with <see cref="BipoOptions.AutoKeep"/> the
    /// smallest room any device had for kept blocks (<see cref="CudaBipoRank.AutoKeep"/>). Null until such a batch.
    /// </summary>
    public (long BudgetBytes, int KeptBlocks)? LastKeep { get; private set; }

    /// <summary>Device bytes one kept block's activations take on each device for <paramref name="rows"/> rows of a replica's share.</summary>
    public long KeptBlockBytes(long rows) => KeptBlockBytes(Config, TensorParallel, rows);

    /// <summary>The same for model <paramref name="c"/> at tensor parallelism <paramref name="tensorParallel"/>, without devices.</summary>
    public static long KeptBlockBytes(ModelConfig c, int tensorParallel, long rows) =>
        CudaBipoRank.KeptBlockBytes(RankShape.For(c, 0, tensorParallel), c.HiddenSize, rows);

    /// <summary>The LM head's (rows, vocab slice) f32 logits chunk on each device, in bytes.</summary>
    public long LogitChunkBytes
    {
        set { foreach (CudaBipoRank r in _ranks) r.LogitChunkBytes = value; }
    }

    /// <param name="emulatedDeviceBytes">the size emulated devices report (default <see cref="EmulatedCudaDevice.DefaultTotalBytes"/>)</param>
    public static CudaBipoBackend Load(string modelDir, CudaPlatform platform, int tensorParallel = 1, int dataParallel = 1, long? emulatedDeviceBytes = null)
    {
        if (tensorParallel < 1 || dataParallel < 1)
            throw new ArgumentException($"tensor parallelism ({tensorParallel}) and data parallelism ({dataParallel}) must be at least 1");
        ModelConfig c = ModelConfig.Load(Path.Combine(modelDir, "config.json"));
        if (c.HeadDim is not (32 or 64 or 128))
            throw new NotSupportedException($"{modelDir}: head_dim {c.HeadDim} has no CUDA attention kernel (32, 64 or 128)");
        if (c.NumHeads % c.NumKvHeads != 0)
            throw new NotSupportedException($"{modelDir}: {c.NumHeads} query heads do not divide into {c.NumKvHeads} KV heads");
        var shapes = Enumerable.Range(0, tensorParallel).Select(r => RankShape.For(c, r, tensorParallel)).ToArray();
        int n = tensorParallel * dataParallel;
        CudaDevice[] devices = Enumerable.Range(0, n)
            .Select(i => platform == CudaPlatform.Emulated
                ? new EmulatedCudaDevice(i) { TotalBytes = emulatedDeviceBytes ?? EmulatedCudaDevice.DefaultTotalBytes }
                : (CudaDevice)new DriverCudaDevice(i)).ToArray();
        CudaCollectives? Group(IEnumerable<int> members)
        {
            int[] m = members.ToArray();
            if (m.Length == 1) return null;
            return platform == CudaPlatform.Emulated ? new EmulatedCollectives(m.Length)
                : new NcclCollectives(m.Select(i => (DriverCudaDevice)devices[i]).ToArray());
        }
        var tensorGroups = Enumerable.Range(0, dataParallel).Select(j => Group(Enumerable.Range(j * tensorParallel, tensorParallel))).ToArray();
        var dataGroups = Enumerable.Range(0, tensorParallel).Select(t => Group(Enumerable.Range(0, dataParallel).Select(j => j * tensorParallel + t))).ToArray();
        using TensorStore store = TensorStore.Open(modelDir);
        ModelWeights weights = ModelWeights.Load(store, c);
        var ranks = new CudaBipoRank[n];
        for (int i = 0; i < n; i++)
        {
            int replica = i / tensorParallel, t = i % tensorParallel;
            ranks[i] = new CudaBipoRank(c, devices[i], shapes[t], DeviceWeights.Upload(devices[i], c, weights, shapes[t]),
                tensorGroups[replica], t, dataGroups[t], replica);
        }
        return new CudaBipoBackend(c, ranks, [.. tensorGroups, .. dataGroups], tensorParallel, dataParallel,
            platform == CudaPlatform.Emulated ? "cuda-emu" : "cuda");
    }

    /// <summary>Bytes of one rank's bf16 weights and f32 norms (<see cref="DeviceWeights.Upload"/>).</summary>
    static long WeightBytes(ModelConfig c, RankShape s)
    {
        long H = c.HiddenSize;
        long layer = 2 * (s.QkvDim * H + H * s.QDim + 2L * s.Intermediate * H + H * s.Intermediate) + 4 * (2 * H + 2L * c.HeadDim);
        return c.NumLayers * layer + 2L * c.VocabSize * H + 2L * s.VocabSlice * H + 4 * H + 2L * c.HeadDim;
    }

    /// <param name="keepBytes">
    /// device memory each device may spend keeping upper blocks' activations for the backward instead of recomputing
    /// them: the budget is per device, counted in that device's own bytes (under tensor parallelism a rank keeps its
    /// slice of the heads and the MLP, so a block costs about 1/TP of the TP 1 figure beside the replicated (T, H)
    /// residual h; <see cref="KeptBlockBytes(long)"/>). The lowest upper blocks that fit are kept, and with any budget
    /// above 0 the top block is not recomputed either (its activations are still in the shared buffers). 0 recomputes
    /// every upper block. <see cref="BipoOptions.AutoKeep"/>: at each batch, each device's free memory less a margin and
    /// the pass's other buffers (<see cref="CudaBipoRank.AutoKeep"/>), the same number of blocks for every rank of a
    /// tensor group (the fewest any of its devices has room for). The gradient is the same bits either way.
    /// </param>
    public ISteeredModel At(int layer, long keepBytes = 0)
    {
        if (layer < 0 || layer >= Config.NumLayers)
            throw new ArgumentException($"layer {layer} is out of range: the model has blocks 0..{Config.NumLayers - 1}");
        if (keepBytes < 0 && keepBytes != BipoOptions.AutoKeep)
            throw new ArgumentException($"the memory kept for the backward must be non-negative or BipoOptions.AutoKeep (got {keepBytes})");
        return new SteeredModel(this, layer, keepBytes);
    }

    void Run(Action<int> work)
    {
        if (_aborted is not null)
            throw new InvalidOperationException($"the device group was aborted when a rank failed ({_aborted.Message}); load the model again");
        try { _workers.Run(work); }
        catch (Exception e) when (_ranks.Length > 1)
        {
            _aborted = e;
            throw;
        }
    }

    static void CheckHeld(object? held, object holder, string what)
    {
        if (!ReferenceEquals(held, holder))
            throw new InvalidOperationException($"the devices no longer hold this {what}: another one ran since");
    }

    sealed class SteeredModel(CudaBipoBackend backend, int layer, long keepBytes) : ISteeredModel
    {
        public int Layer => layer;

        public ISteeredBatch Prepare(IReadOnlyList<ScoredSequence> sequences)
        {
            var batch = new SequenceBatch(sequences, backend.Config.VocabSize);
            // Replica j takes sequences [bounds[j], bounds[j+1]): whole pairs, as evenly as they go.
            int dp = backend.DataParallel, pairs = (sequences.Count + 1) / 2;
            int[] bounds = Enumerable.Range(0, dp + 1).Select(j => Math.Min(sequences.Count, 2 * (int)((long)pairs * j / dp))).ToArray();
            var shares = Enumerable.Range(0, dp).Select(j => bounds[j + 1] > bounds[j]
                ? new SequenceBatch(sequences.Skip(bounds[j]).Take(bounds[j + 1] - bounds[j]).ToArray(), backend.Config.VocabSize) : null).ToArray();
            var prepared = new PreparedBatch(backend, batch, shares, bounds);
            backend._batch = prepared;
            backend._pass = null;
            int tp = backend.TensorParallel;
            if (keepBytes != BipoOptions.AutoKeep)
            {
                backend.Run(rank => backend._ranks[rank].Prepare(shares[rank / tp], layer, keepBytes));
                if (keepBytes > 0) backend.LastKeep = (keepBytes, backend.KeptBlocks);
                return prepared;
            }
            // Every rank of a tensor group keeps the same blocks (a recompute all-reduces): the fewest any of its devices has room for.
            var room = new (int KeptBlocks, long BudgetBytes)[backend._ranks.Length];
            backend.Run(rank => room[rank] = backend._ranks[rank].AutoKeep(shares[rank / tp], layer));
            int[] kept = Enumerable.Range(0, dp).Select(j => room.Skip(j * tp).Take(tp).Min(r => r.KeptBlocks)).ToArray();
            backend.Run(rank => backend._ranks[rank].Prepare(shares[rank / tp], layer, keepTop: true, kept[rank / tp]));
            backend.LastKeep = (room.Min(r => r.BudgetBytes), backend.KeptBlocks);
            return prepared;
        }
    }

    sealed class PreparedBatch(CudaBipoBackend backend, SequenceBatch batch, SequenceBatch?[] shares, int[] bounds) : ISteeredBatch
    {
        public SequenceBatch Batch => batch;

        public ISteeredPass Forward(ReadOnlySpan<float> vector, float multiplier)
        {
            CheckHeld(backend._batch, this, "batch");
            if (vector.Length != backend.Config.HiddenSize)
                throw new ArgumentException($"steering vector has {vector.Length} elements, the model's hidden size is {backend.Config.HiddenSize}");
            float[] v = vector.ToArray();
            var results = new (double[] LogProbs, float[] LogSumExp)[backend._ranks.Length];
            backend.Run(rank => results[rank] = backend._ranks[rank].Forward(v, multiplier));
            var logProbs = new double[batch.Count];
            var lse = new float[shares.Length][];
            for (int j = 0; j < shares.Length; j++)
            {
                var (tokenLogProbs, logSumExp) = results[j * backend.TensorParallel];
                lse[j] = logSumExp;
                if (shares[j] is not { } share) continue;
                for (int s = 0, i = 0; s < share.Count; s++)
                    for (int t = 0; t < share.Sequences[s].ResponseLength; t++, i++) logProbs[bounds[j] + s] += tokenLogProbs[i];
            }
            var pass = new Pass(backend, this, multiplier, logProbs, lse);
            backend._pass = pass;
            return pass;
        }

        public SequenceBatch? Share(int replica) => shares[replica];
        public int First(int replica) => bounds[replica];
    }

    sealed class Pass(CudaBipoBackend backend, PreparedBatch batch, float multiplier, double[] logProbs, float[][] logSumExp) : ISteeredPass
    {
        public double[] LogProbs => logProbs;

        public void Backward(ReadOnlySpan<double> dLogProb, Span<float> gradVector)
        {
            CheckHeld(backend._pass, this, "pass");
            if (dLogProb.Length != batch.Batch.Count) throw new ArgumentException($"need one gradient per sequence ({batch.Batch.Count})");
            backend._pass = null; // once per pass
            // Each replica's (R) upstream gradient of its response tokens' log-probs.
            var dRow = new float[logSumExp.Length][];
            for (int j = 0; j < dRow.Length; j++)
            {
                SequenceBatch? share = batch.Share(j);
                dRow[j] = new float[share?.ResponseRows.Length ?? 0];
                if (share is null) continue;
                for (int s = 0, i = 0; s < share.Count; s++)
                    for (int t = 0; t < share.Sequences[s].ResponseLength; t++, i++) dRow[j][i] = (float)dLogProb[batch.First(j) + s];
            }
            var grads = new float[backend._ranks.Length][];
            int tp = backend.TensorParallel;
            backend.Run(rank => grads[rank] = backend._ranks[rank].Backward(dRow[rank / tp], logSumExp[rank / tp], multiplier));
            for (int r = 1; r < grads.Length; r++)
                if (!grads[r].AsSpan().SequenceEqual(grads[0]))
                    throw new InvalidOperationException($"rank {r} holds a different vector gradient from rank 0: the replicas would drift apart");
            for (int i = 0; i < gradVector.Length; i++) gradVector[i] += grads[0][i];
        }
    }

    public void Dispose()
    {
        _workers.Dispose();
        foreach (CudaCollectives? g in _groups) g?.Dispose();
        foreach (CudaBipoRank r in _ranks)
        {
            r.Dispose();
            r.Device.Dispose();
        }
    }
}
