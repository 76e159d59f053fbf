using System.Runtime.CompilerServices;
using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda;

public enum CudaPlatform { Driver, Emulated }

/// <summary>
/// The Llama / Qwen3 decoder on CUDA devices, with the contract of <see cref="Transformer"/>:
/// bf16 weights and activations into every GEMM (f32 accumulation), f32 residual stream, per-row
/// steering at both residual adds and at the attention output, hidden-state capture in HF numbering.
/// Tensor parallel over N devices, one long-lived host thread per device: column-parallel QKV and
/// gate/up, row-parallel O and down with an all-reduce, vocab-parallel lm_head with an all-gather; the
/// residual stream is replicated, so its steering and capture are the same on every rank (the attention
/// output is split by heads: CudaTransformer.AttentionSteering.cs). A rank that fails aborts the
/// collectives, so the others stop too and the first error is thrown.
/// KV caches live on the devices, one per <see cref="KvCache"/> object (which keeps only the length), in
/// pages from a pool (CudaTransformer.KvCache.cs); decode steps run as device graphs (CudaTransformer.Graphs.cs).
/// </summary>
public sealed partial class CudaTransformer : IForwardModel
{
    const int MaxQueryHeadsPerKvHead = 8; // DECODE_MAX_GROUP of kernels/attention_decode.cu

    readonly Rank[] _ranks;
    readonly CudaCollectives? _collectives;
    readonly RankWorkers _workers;
    Exception? _aborted; // the failure that aborted the collectives: the group cannot run again
    readonly ConditionalWeakTable<KvCache, SequenceKv> _kv = new();
    readonly List<(WeakReference<KvCache> Cache, SequenceKv Kv)> _kvAll = [];

    sealed class Rank(CudaDevice device, RankShape shape, DeviceWeights weights)
    {
        public CudaDevice Device { get; } = device;
        public RankShape Shape { get; } = shape;
        public DeviceWeights Weights { get; } = weights;
        public Workspace Workspace { get; } = new(device);
        public DeviceGraphCache Graphs { get; } = new();
    }

    CudaTransformer(ModelConfig config, Rank[] ranks, CudaCollectives? collectives)
    {
        Config = config;
        _ranks = ranks;
        _collectives = RecordedCollectives.Over(collectives, ranks);
        _workers = new RankWorkers(ranks.Select(r => r.Device.Name).ToArray(), () => _collectives?.Abort());
    }

    public ModelConfig Config { get; }

    /// <summary>Keys per split-KV block of the decode attention (tests make it small to exercise many splits).</summary>
    internal int DecodeChunk { get; set; } = 256;

    /// <summary>The lm_head runs over chunks of logit rows whose (ranks, rows, vocab slice) f32 logits fit this many bytes.</summary>
    internal long LogitChunkBytes { get; set; } = 256L << 20;
    public int TensorParallel => _ranks.Length;
    public IReadOnlyList<string> DeviceNames => _ranks.Select(r => r.Device.Name).ToArray();

    public static CudaTransformer Load(string modelDir, CudaPlatform platform, int tensorParallel = 1)
    {
        if (tensorParallel < 1) throw new ArgumentException($"tensor parallelism {tensorParallel} must be at least 1");
        CudaDevice[] devices = platform == CudaPlatform.Emulated
            ? Enumerable.Range(0, tensorParallel).Select(i => (CudaDevice)new EmulatedCudaDevice(i)).ToArray()
            : Enumerable.Range(0, tensorParallel).Select(i => (CudaDevice)new DriverCudaDevice(i)).ToArray();
        CudaCollectives? collectives = tensorParallel == 1 ? null
            : platform == CudaPlatform.Emulated ? new EmulatedCollectives(tensorParallel)
            : new NcclCollectives(devices.Cast<DriverCudaDevice>().ToArray());
        return Load(modelDir, devices, collectives);
    }

    /// <summary>The model on the given devices (rank r on devices[r]), which it owns from here on.</summary>
    /// <param name="collectives">the group's collectives, or null for one device</param>
    public static CudaTransformer Load(string modelDir, IReadOnlyList<CudaDevice> devices, CudaCollectives? collectives)
    {
        int tensorParallel = devices.Count;
        if (tensorParallel > 1 && collectives?.Ranks != tensorParallel)
            throw new ArgumentException($"{tensorParallel} devices need collectives over {tensorParallel} ranks");
        ModelConfig c = ModelConfig.Load(Path.Combine(modelDir, "config.json"));
        if (c.HeadDim is not (32 or 64 or 128))
            throw new NotSupportedException($"{modelDir}: head_dim {c.HeadDim} has no CUDA attention kernel (32, 64 or 128)");
        if (c.NumHeads % c.NumKvHeads != 0 || c.NumHeads / c.NumKvHeads > MaxQueryHeadsPerKvHead)
            throw new NotSupportedException($"{modelDir}: {c.NumHeads} query heads over {c.NumKvHeads} KV heads; the decode attention kernel serves whole groups of at most {MaxQueryHeadsPerKvHead}");
        var shapes = Enumerable.Range(0, tensorParallel).Select(r => RankShape.For(c, r, tensorParallel)).ToArray();
        using TensorStore store = TensorStore.Open(modelDir);
        ModelWeights weights = ModelWeights.Load(store, c);
        var ranks = new Rank[tensorParallel];
        for (int r = 0; r < tensorParallel; r++) ranks[r] = new Rank(devices[r], shapes[r], DeviceWeights.Upload(devices[r], c, weights, shapes[r]));
        return new CudaTransformer(c, ranks, collectives);
    }

    /// <summary>A length-only cache: the keys and values live on the devices.</summary>
    public KvCache NewCache(int capacity = 64) => new(0, Config.KvDim, capacity);

    /// <summary>Everything one forward pass needs on the host side, shared by the rank threads.</summary>
    sealed class Plan
    {
        public required int Rows, Sequences, MaxNew, MaxVisible;
        public required int[] Tokens, SequenceOfRow, PositionOfRow, RowStart, NewTokens, StartPosition, LogitRows;
        public required SequenceKv[] Kv;
        public required int[] SteerStart;   // (3, L, T+1) row ranges into the entries SteerVector .. SteerSlice, per hook (SteerHooks) and layer
        public required int[] SteerVector;  // (E) index into Vectors (resid_post, resid_mid) or AttentionVectors (attn_z)
        public required float[] SteerMultiplier; // (E)
        public required int[] SteerOp;      // (E) SteeringOp
        public required float[] SteerBounds; // (E, 2) the projection ops' clamp [lo, hi]
        public required int[] SteerSlice;   // (E, 2) the columns [offset, offset + count) of the hook's row the entry acts on
        public required bool[] LayerSteered; // (3, L): per hook (SteerHooks) and layer
        public required bool[] AttentionGathered; // (L): attn_z terms there need whole rows, which tensor parallelism splits by heads
        public required float[] Vectors;    // (nv, H)
        public required float[] AttentionVectors; // (nva, nh·hd); a one-head vector fills the first hd of its row
        public required int[] LogitSequence, LogitRowInSequence; // (R): where each logit row goes in Output
        public required TokenDraw[] Draws;  // (D): the sequences sampled on the device, whose logit rows are [0, D)
        public required int[] DrawSequence; // (D): the sequence of each draw
        public DrawnToken[]? Drawn;         // (D) out
        public float[][]? Captured;         // (L+1) × (T, H) when a sink takes full states
        public StateReductions? Reductions; // when a sink takes reductions, computed on the device
        public ReducedStates[]? Reduced;    // (L+1) out
        public bool Graphed;                // the step's launches run as a device graph (CudaTransformer.Graphs.cs)
        public int DecodeSplits;            // key chunks of the decode attention
        public required float[][] Output;   // per sequence (rows × V), the caller's buffers
    }

    public float[][] Forward(IReadOnlyList<ForwardSequence> batch, IHiddenStateSink? sink = null)
    {
        float[][] logits = LogitBuffers.Allocate(batch, Config.VocabSize);
        ForwardInto(batch, logits, sink);
        return logits;
    }

    public void ForwardInto(IReadOnlyList<ForwardSequence> batch, float[][] logits, IHiddenStateSink? sink = null) =>
        Run(batch, logits, sink, null);

    /// <summary>
    /// Samples the drawn sequences on the device (kernels/sampling.cu, logprobs.cu), repetition
    /// penalty included: only their tokens, log-probs and top log-probs come back, never their
    /// logits. With tensor parallelism the ranks' vocabulary slices of the drawn rows are joined on
    /// rank 0, which samples. A draw on a sequence that asks for all logits sends the whole batch
    /// to full logits and the host sampler.
    /// </summary>
    public DrawnToken?[] ForwardSample(IReadOnlyList<ForwardSequence> batch, float[][] logits, IReadOnlyList<TokenDraw?> draws, IHiddenStateSink? sink = null)
    {
        TokenDraw.Check(batch, draws, Config.VocabSize);
        bool onDevice = DeviceSampling && draws.Any(d => d is not null)
            && Enumerable.Range(0, batch.Count).All(s => draws[s] is null || !batch[s].AllLogits);
        if (!onDevice) return TokenDraw.ForwardThenSampleOnHost(this, batch, logits, draws, sink);
        Plan plan = Run(batch, logits, sink, draws);
        var drawn = new DrawnToken?[batch.Count];
        for (int i = 0; i < plan.DrawSequence.Length; i++) drawn[plan.DrawSequence[i]] = plan.Drawn![i];
        return drawn;
    }

    /// <summary>Whether <see cref="ForwardSample"/> samples on the device (else always on the host, from full logits).</summary>
    public bool DeviceSampling { get; set; } = Environment.GetEnvironmentVariable("STEER_HOST_SAMPLING") != "1";

    Plan Run(IReadOnlyList<ForwardSequence> batch, float[][] logits, IHiddenStateSink? sink, IReadOnlyList<TokenDraw?>? draws)
    {
        ModelConfig c = Config;
        if (_aborted is not null)
            throw new InvalidOperationException($"the tensor-parallel group was aborted when a rank failed ({_aborted.Message}); load the model again");
        int H = c.HiddenSize, L = c.NumLayers;
        // Everything is checked before any cache changes, as on the CPU path.
        for (int s = 0; s < batch.Count; s++)
        {
            ForwardSequence seq = batch[s];
            if (seq.Tokens.Length == 0) throw new ArgumentException($"sequence {s} of the batch has no new tokens");
            seq.Steering?.Validate(c);
            foreach (int token in seq.Tokens)
                if ((uint)token >= (uint)c.VocabSize)
                    throw new ArgumentException($"token id {token} is outside the vocabulary (size {c.VocabSize})");
            if (seq.Cache.Length > 0 && !_kv.TryGetValue(seq.Cache, out _))
                throw new ArgumentException($"sequence {s}: its KV cache was filled by another backend");
        }
        LogitBuffers.Check(batch, logits, c.VocabSize);
        FreeDeadCaches();

        Plan plan = MakePlan(batch, logits, draws);
        var layout = new BatchLayout(plan.SequenceOfRow, plan.PositionOfRow);
        if (sink is IReducedStateSink reducing && DeviceReductions)
        {
            plan.Reductions = reducing.Reductions(layout);
            CheckReductions(plan.Reductions, plan.Rows);
        }
        else if (sink is not null) plan.Captured = Enumerable.Range(0, L + 1).Select(_ => new float[plan.Rows * H]).ToArray();
        PrepareLaunches(plan, sink);

        try { _workers.Run(rank => RunRank(rank, plan)); }
        catch (Exception e) when (_collectives is not null)
        {
            _aborted = e; // RankWorkers aborted the collectives
            throw;
        }

        foreach (ForwardSequence seq in batch) seq.Cache.Commit(seq.Tokens.Length);
        if (plan.Reductions is not null)
            for (int e = 0; e <= L; e++) ((IReducedStateSink)sink!).RecordReduced(e, plan.Reduced![e], plan.Reductions);
        else if (sink is not null)
            for (int e = 0; e <= L; e++) sink.Record(e, plan.Captured![e], layout);
        return plan;
    }

    Plan MakePlan(IReadOnlyList<ForwardSequence> batch, float[][] output, IReadOnlyList<TokenDraw?>? draws)
    {
        ModelConfig c = Config;
        int H = c.HiddenSize, L = c.NumLayers, T = batch.Sum(s => s.Tokens.Length);
        var tokens = new int[T];
        var sequenceOfRow = new int[T];
        var positionOfRow = new int[T];
        var steeringOfRow = new SequenceSteering?[T];
        var rowStart = new int[batch.Count];
        var newTokens = new int[batch.Count];
        var startPosition = new int[batch.Count];
        var kv = new SequenceKv[batch.Count];
        // Logit rows: the drawn sequences' (one each) first, then every row the others get back.
        var logitRows = new List<int>();
        var logitSequence = new List<int>();
        var logitRowInSequence = new List<int>();
        var drawSequence = new List<int>();
        for (int s = 0, end = 0; s < batch.Count; s++)
        {
            end += batch[s].Tokens.Length;
            if (draws?[s] is null) continue;
            logitRows.Add(end - 1);
            logitSequence.Add(s);
            logitRowInSequence.Add(0);
            drawSequence.Add(s);
        }
        int maxVisible = 0;
        for (int s = 0, r = 0; s < batch.Count; s++)
        {
            ForwardSequence seq = batch[s];
            int n = seq.Tokens.Length, start = seq.Cache.Length;
            seq.Cache.Reserve(start + n);
            kv[s] = DeviceCache(seq.Cache, start + n);
            rowStart[s] = r;
            newTokens[s] = n;
            startPosition[s] = start;
            maxVisible = Math.Max(maxVisible, start + n);
            for (int i = 0; i < n; i++, r++)
            {
                tokens[r] = seq.Tokens[i];
                sequenceOfRow[r] = s;
                positionOfRow[r] = start + i;
                steeringOfRow[r] = seq.Steering;
            }
            int first = seq.AllLogits ? r - n : r - 1;
            for (int i = first; i < r && draws?[s] is null; i++)
            {
                logitRows.Add(i);
                logitSequence.Add(s);
                logitRowInSequence.Add(i - first);
            }
        }

        // Steering as per-hook, per-layer row ranges of (vector, multiplier, op, bounds, slice) entries,
        // each distinct vector uploaded once into its hook's block (the residual hooks' are H wide,
        // attn_z's nh·hd). Only the rows and layers where a term applies get entries.
        var residualIndex = new Dictionary<float[], int>(ReferenceEqualityComparer.Instance);
        var attentionIndex = new Dictionary<float[], int>(ReferenceEqualityComparer.Instance);
        var steerStart = new int[SteerHooks.Length * L * (T + 1)];
        var steerVector = new List<int>();
        var steerMultiplier = new List<float>();
        var steerOp = new List<int>();
        var steerBounds = new List<float>();
        var steerSlice = new List<int>();
        var layerSteered = new bool[SteerHooks.Length * L];
        var attentionGathered = new bool[L];
        for (int table = 0; table < SteerHooks.Length; table++)
        for (int l = 0; l < L; l++)
        {
            SteeringHook hook = SteerHooks[table];
            Dictionary<float[], int> vectorIndex = hook == SteeringHook.AttnZ ? attentionIndex : residualIndex;
            int at = table * L + l;
            for (int r = 0; r < T; r++)
            {
                steerStart[at * (T + 1) + r] = steerVector.Count;
                if (steeringOfRow[r] is { } steering)
                    foreach (SteeringAdd a in steering.Adds)
                        if (a.Layer == l && a.Hook == hook && a.AppliesAt(positionOfRow[r], steering.PromptLength))
                        {
                            if (!vectorIndex.TryGetValue(a.Vector, out int v)) vectorIndex[a.Vector] = v = vectorIndex.Count;
                            steerVector.Add(v);
                            steerMultiplier.Add(a.Multiplier);
                            steerOp.Add((int)a.Op);
                            (float lo, float hi) = a.ProjectionBounds;
                            steerBounds.Add(lo);
                            steerBounds.Add(hi);
                            (int offset, int count) = a.Slice;
                            steerSlice.Add(offset);
                            steerSlice.Add(count);
                            layerSteered[at] = true;
                            if (hook == SteeringHook.AttnZ && NeedsWholeRows(a)) attentionGathered[l] = true;
                        }
                steerStart[at * (T + 1) + r + 1] = steerVector.Count;
            }
        }
        var vectors = new float[Math.Max(1, residualIndex.Count) * H];
        foreach ((float[] vec, int i) in residualIndex) vec.CopyTo(vectors, i * H);
        var attentionVectors = new float[Math.Max(1, attentionIndex.Count) * c.QDim];
        foreach ((float[] vec, int i) in attentionIndex) vec.CopyTo(attentionVectors, i * c.QDim);

        return new Plan
        {
            Rows = T, Sequences = batch.Count, MaxNew = newTokens.Max(), MaxVisible = maxVisible,
            Tokens = tokens, SequenceOfRow = sequenceOfRow, PositionOfRow = positionOfRow, RowStart = rowStart,
            NewTokens = newTokens, StartPosition = startPosition, LogitRows = logitRows.ToArray(), Kv = kv,
            SteerStart = steerStart, SteerVector = steerVector.Count > 0 ? steerVector.ToArray() : [0],
            SteerMultiplier = steerMultiplier.Count > 0 ? steerMultiplier.ToArray() : [0f],
            SteerOp = steerOp.Count > 0 ? steerOp.ToArray() : [0], SteerBounds = steerBounds.Count > 0 ? steerBounds.ToArray() : [0f, 0f],
            SteerSlice = steerSlice.Count > 0 ? steerSlice.ToArray() : [0, 0],
            LayerSteered = layerSteered, AttentionGathered = attentionGathered, Vectors = vectors, AttentionVectors = attentionVectors,
            LogitSequence = logitSequence.ToArray(), LogitRowInSequence = logitRowInSequence.ToArray(), Output = output,
            DrawSequence = drawSequence.ToArray(), Draws = drawSequence.Select(s => draws![s]!).ToArray(),
        };
    }

    /// <summary>One rank's whole forward pass; with several ranks, each runs this on its own thread.</summary>
    unsafe void RunRank(int rank, Plan p)
    {
        ModelConfig c = Config;
        Rank rk = _ranks[rank];
        CudaDevice d = rk.Device;
        RankShape s = rk.Shape;
        DeviceWeights w = rk.Weights;
        Workspace ws = rk.Workspace;
        int T = p.Rows, H = c.HiddenSize, L = c.NumLayers, hd = c.HeadDim, I = s.Intermediate;
        float eps = (float)c.RmsNormEps;

        // The step's inputs in one copy: nothing here waits for the device.
        Array[] drawArrays = DrawArrays(p);
        DevicePtr[] inputs = ws.Upload(p.Graphed, [p.Tokens, p.SequenceOfRow, p.PositionOfRow, p.RowStart, p.NewTokens, p.StartPosition,
            KvPageTable(p, rank), KvLayout(p),
            p.SteerStart, p.SteerVector, p.SteerMultiplier, p.SteerOp, p.SteerBounds, p.Vectors, p.SteerSlice, p.AttentionVectors,
            p.LogitRows, .. drawArrays, .. ReductionArrays(p)]);
        DevicePtr tokens = inputs[0], seqOfRow = inputs[1], posOfRow = inputs[2], rowStart = inputs[3], newTokens = inputs[4],
            startPos = inputs[5], kvPages = inputs[6], kvLayout = inputs[7], steerStart = inputs[8], steerVec = inputs[9],
            steerMult = inputs[10], steerOp = inputs[11], steerBounds = inputs[12], vectors = inputs[13], logitRows = inputs[16];
        var steer = new SteerTables(steerStart, steerVec, steerMult, steerOp, steerBounds, inputs[14], inputs[15]);
        var draw = DrawInputs.At(inputs.AsSpan(17, drawArrays.Length));
        var capture = new RankCapture(d, ws, p, rank, H, inputs.AsSpan(17 + drawArrays.Length));

        DevicePtr x = ws.Get("x", (long)T * H * 4);                 // (T, H) f32 residual stream
        DevicePtr xn = ws.Get("xn", (long)T * H * 2);               // (T, H) bf16 normed sublayer input
        DevicePtr qkv = ws.Get("qkv", (long)T * s.QkvDim * 4);      // (T, qd + 2·kvd) f32
        DevicePtr q = ws.Get("q", (long)T * s.QDim * 2);            // (T, qd) bf16 rotated queries
        DevicePtr att = ws.Get("att", (long)T * s.QDim * 2);        // (T, qd) bf16 attention output
        DevicePtr delta = ws.Get("delta", (long)T * H * 4);         // (T, H) f32 sublayer output
        DevicePtr gateUp = ws.Get("gate_up", (long)T * 2 * I * 4);  // (T, 2·I) f32
        DevicePtr act = ws.Get("act", (long)T * I * 2);             // (T, I) bf16

        void AllReduce(DevicePtr buffer, long count)
        {
            if (_collectives is not null) _collectives.AllReduceSum(rank, buffer, buffer, count);
        }

        if (p.Graphed) d.BeginRecording();
        d.Launch("embedding_gather", new Dim3((uint)T), Threads(H), w.Embedding, tokens, x, H);
        capture.Record(0, x, projected: false);
        for (int l = 0; l < L; l++)
        {
            DeviceLayer lw = w.Layers[l];

            // h = x + attention(attention_norm(x))
            d.Launch("rmsnorm", new Dim3((uint)T), Threads(H), x, lw.InputNorm, DevicePtr.Null, xn, H, eps);
            Linear.Forward(d, xn, lw.Qkv, qkv, T, s.QkvDim, H);
            d.Launch("qk_norm_rope", new Dim3((uint)T), new Dim3((uint)(32 * Math.Min(s.Heads + s.KvHeads, 32))),
                qkv, w.InvFreq, posOfRow, seqOfRow, lw.QNorm, lw.KNorm, eps, q, kvPages, kvLayout, l, s.Heads, s.KvHeads, hd);
            Attend(rk, p, l, q, att, seqOfRow, posOfRow, rowStart, newTokens, startPos, kvPages, kvLayout);
            if (p.LayerSteered[2 * L + l]) SteerAttention(rank, p, l, att, steer);
            Linear.Forward(d, att, lw.O, delta, T, H, s.QDim);
            AllReduce(delta, (long)T * H);
            DevicePtr midSteer = p.LayerSteered[L + l] ? steerStart + (long)(L + l) * (T + 1) * 4 : DevicePtr.Null;
            d.Launch("residual_add_steer", new Dim3((uint)T), Threads(H), x, delta, H,
                midSteer, steerVec, steerMult, steerOp, steerBounds, vectors, DevicePtr.Null, 0, DevicePtr.Null);

            // out = h + feed_forward(ffn_norm(h)), then the steering add at this block's output
            d.Launch("rmsnorm", new Dim3((uint)T), Threads(H), x, lw.PostNorm, DevicePtr.Null, xn, H, eps);
            Linear.Forward(d, xn, lw.GateUp, gateUp, T, 2 * I, H);
            d.Launch("swiglu", new Dim3((uint)T), Threads(I), gateUp, act, I);
            Linear.Forward(d, act, lw.Down, delta, T, H, I);
            AllReduce(delta, (long)T * H);
            DevicePtr layerSteer = p.LayerSteered[l] ? steerStart + (long)l * (T + 1) * 4 : DevicePtr.Null;
            var (proj, nproj, projOut) = l < L - 1 ? capture.Fused(l + 1) : default;
            d.Launch("residual_add_steer", new Dim3((uint)T), Threads(H), x, delta, H,
                layerSteer, steerVec, steerMult, steerOp, steerBounds, vectors, proj, nproj, projOut);

            if (l < L - 1) capture.Record(l + 1, x, projected: true);
        }

        d.Launch("rmsnorm", new Dim3((uint)T), Threads(H), x, w.FinalNorm, capture.Active ? x : DevicePtr.Null, xn, H, eps);
        capture.Record(L, x, projected: false);

        // The lm_head over chunks of the logit rows: device and host buffers stay bounded however
        // many rows a scoring batch asks for, and every size is 64-bit.
        int R = p.LogitRows.Length, VL = s.VocabSlice, ranks = _ranks.Length;
        int chunk = (int)Math.Clamp(LogitChunkBytes / ((long)ranks * VL * 4), 1, R);
        DevicePtr selected = ws.Get("selected", (long)chunk * H * 2);   // (chunk, H) bf16
        DevicePtr logits = ws.Get("logits", (long)chunk * VL * 4);      // (chunk, VL) f32
        DevicePtr all = _collectives is null ? logits : ws.Get("logits_all", (long)ranks * chunk * VL * 4); // (ranks, chunk, VL)
        float* host = rank == 0 ? (float*)ws.Host("logits", (long)ranks * chunk * VL * 4) : null;
        int D = p.DrawSequence.Length; // drawn rows come first, sampled on rank 0
        DrawOutputs drawn = D > 0 && rank == 0 ? DrawOutputs.In(ws, D) : default;
        for (int first = 0; first < R; first += chunk)
        {
            int n = Math.Min(chunk, R - first), sampled = Math.Clamp(D - first, 0, n);
            d.Launch("gather_rows_bf16", new Dim3((uint)n), Threads(H), xn, logitRows + first * 4L, selected, H);
            Linear.Forward(d, selected, w.LmHead, logits, n, VL, H);
            _collectives?.AllGather(rank, logits, all, (long)n * VL);
            if (rank != 0)
            {
                if (p.Graphed) rk.Graphs.Launch(d, d.EndRecording()); // one chunk: the step's last launch
                continue;
            }
            if (sampled > 0) SampleRows(d, ws, p, WholeRows(d, ws, all, n, VL, sampled), c.VocabSize, first, sampled, draw, drawn);
            if (p.Graphed) rk.Graphs.Launch(d, d.EndRecording());
            int rest = n - sampled;
            for (int k = 0; k < ranks && rest > 0; k++) // each rank's slice of the rows after the drawn ones
                d.CopyToHost(host + (long)k * rest * VL, all + ((long)k * n + sampled) * VL * 4, (long)rest * VL * 4);
            if (rest > 0) ScatterLogits(p, host, first + sampled, rest, VL);
        }
        if (D > 0 && rank == 0) p.Drawn = drawn.Download(d, p.Draws, c.VocabSize);
        capture.Finish(); // after the lm_head is queued: the host waits once, at the end
        if (rank != 0) d.Synchronize(); // this step's input copy is done before the next step rewrites its buffer
    }

    /// <summary>Logit rows [first, first + n) from (ranks, n, VL) host logits into the caller's buffers.</summary>
    unsafe void ScatterLogits(Plan p, float* host, int first, int n, int VL)
    {
        int V = Config.VocabSize;
        for (int i = 0; i < n; i++)
        {
            float[] output = p.Output[p.LogitSequence[first + i]];
            long row = (long)p.LogitRowInSequence[first + i] * V;
            for (int rank = 0; rank < _ranks.Length; rank++)
            {
                int from = rank * VL, count = Math.Min(VL, V - from);
                if (count > 0) new ReadOnlySpan<float>(host + ((long)rank * n + i) * VL, count).CopyTo(output.AsSpan((int)(row + from), count));
            }
        }
    }

    void Attend(Rank rk, Plan p, int layer, DevicePtr q, DevicePtr att, DevicePtr seqOfRow, DevicePtr posOfRow,
        DevicePtr rowStart, DevicePtr newTokens, DevicePtr startPos, DevicePtr kvPages, DevicePtr kvLayout)
    {
        CudaDevice d = rk.Device;
        RankShape s = rk.Shape;
        int hd = s.HeadDim;
        float scale = 1f / MathF.Sqrt(hd);
        if (p.MaxNew == 1)
        {
            // Decode: one query row per sequence, its keys split into chunks across blocks, each block
            // serving all query heads of one KV head.
            int splits = p.DecodeSplits;
            DevicePtr partO = rk.Workspace.Get("part_o", (long)p.Rows * s.Heads * splits * hd * 4);   // (T, nh, splits, hd)
            DevicePtr partMl = rk.Workspace.Get("part_ml", (long)p.Rows * s.Heads * splits * 2 * 4); // (T, nh, splits, 2)
            d.Launch($"attention_decode_hd{hd}", new Dim3((uint)splits, (uint)s.KvHeads, (uint)p.Rows), new Dim3(128),
                q, seqOfRow, posOfRow, kvPages, kvLayout, layer, s.Heads, s.KvHeads, scale, DecodeChunk, partO, partMl);
            d.Launch("attention_decode_combine", new Dim3((uint)s.Heads, (uint)p.Rows), new Dim3(32), partO, partMl, splits, hd, att);
        }
        else
        {
            d.Launch($"attention_prefill_hd{hd}", new Dim3((uint)((p.MaxNew + 63) / 64), (uint)s.Heads, (uint)p.Sequences), new Dim3(128),
                q, att, rowStart, newTokens, startPos, kvPages, kvLayout, layer, s.Heads, s.KvHeads, scale);
        }
    }

    /// <summary>A block size for a row of n elements: about 4 elements per thread, whole warps, at most 1024.</summary>
    static Dim3 Threads(int n) => new((uint)Math.Clamp((n / 4 + 31) / 32 * 32, 32, 1024));

    public void Dispose()
    {
        _workers.Dispose();
        _collectives?.Dispose();
        foreach (Rank r in _ranks)
        {
            r.Graphs.Dispose();
            r.Workspace.Dispose();
            r.Device.Dispose();
        }
    }
}
