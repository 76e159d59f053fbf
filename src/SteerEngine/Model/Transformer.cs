using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Model;

/// <summary>One sequence's part of a forward batch: its new tokens, its cache and its steering.</summary>
public sealed class ForwardSequence(KvCache cache, int[] tokens, SequenceSteering? steering = null, bool allLogits = false)
{
    public KvCache Cache { get; } = cache;
    public int[] Tokens { get; } = tokens;
    public SequenceSteering? Steering { get; } = steering is { HasConditions: true }
        ? throw new ArgumentException("conditional steering terms must be resolved for the prompt first (ConditionalSteering.Resolve)")
        : steering;
    /// <summary>Logits for every new token (scoring, tests) instead of only the last (generation).</summary>
    public bool AllLogits { get; } = allLogits;
}

/// <summary>
/// The Llama / Qwen3 decoder on the CPU: embeddings → blocks → final norm → logits, for a batch of
/// sequences of different lengths, each continuing from its own KV cache. The ops run on the exact
/// f32 reference kernels or on a fast kernel set (packed bf16 weights; see <see cref="ICpuKernels"/>).
/// </summary>
public sealed partial class Transformer : IForwardModel
{
    readonly Rope _rope;
    readonly float[] _invFreq;        // (hd/2)
    readonly ICpuKernels? _fast;      // null: the exact path
    readonly PackedLayer[]? _packed;  // per layer, with the fast path
    readonly PackedMatrix? _lmHead;
    Workspace? _workspace;            // the activation buffers of the last Forward, reused by the next

    public Transformer(ModelConfig config, ModelWeights weights, CpuKernelChoice kernels = CpuKernelChoice.Exact)
    {
        Config = config;
        Weights = weights;
        _rope = new Rope(config);
        _invFreq = Rope.InverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling);
        _fast = CpuKernels.Create(kernels);
        if (_fast is not null)
        {
            // Each matrix's mapped file pages are handed back once it is packed, so the resident
            // size stays near one copy of the weights (the 8B shape in 24 GiB).
            _packed = weights.Layers.Select(l => PackedLayer.Pack(_fast, l)).ToArray();
            _lmHead = _fast.Pack(weights.LmHead);
            weights.LmHead.ReleasePages();
        }
    }

    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }

    /// <summary>When set, every op of <see cref="Forward"/> adds its wall time here (<c>steer bench --profile</c>).</summary>
    public OpProfile? Profile { get; set; }

    /// <summary>"exact", "native" or "managed".</summary>
    public string Kernels => _fast?.Name ?? "exact";

    public static Transformer Load(string modelDir, CpuKernelChoice kernels = CpuKernelChoice.Exact)
    {
        ModelConfig config = ModelConfig.Load(Path.Combine(modelDir, "config.json"));
        TensorStore store = TensorStore.Open(modelDir);
        try
        {
            return new Transformer(config, ModelWeights.Load(store, config), kernels);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public KvCache NewCache(int capacity = 64) => new(Config.NumLayers, Config.KvDim, capacity);

    /// <summary>
    /// Runs the new tokens of every sequence through the model, appends them to the caches and
    /// returns each sequence's logits: (n, V) with AllLogits, else (1, V) for its last token.
    /// </summary>
    public float[][] Forward(IReadOnlyList<ForwardSequence> batch, IHiddenStateSink? sink = null)
    {
        float[][] logits = LogitBuffers.Allocate(batch, Config.VocabSize);
        ForwardInto(batch, logits, sink);
        return logits;
    }

    /// <summary>
    /// <see cref="Forward"/> into the caller's logits buffers (see <see cref="IForwardModel.ForwardInto"/>):
    /// with buffers kept across decode steps, a step allocates only a few small per-row arrays.
    /// </summary>
    public void ForwardInto(IReadOnlyList<ForwardSequence> batch, float[][] logits, IHiddenStateSink? sink = null)
    {
        ModelConfig c = Config;
        LogitBuffers.Check(batch, logits, c.VocabSize);
        int H = c.HiddenSize, T = 0;
        for (int s = 0; s < batch.Count; s++) T += batch[s].Tokens.Length;

        // Row r of every buffer is one token; rows are grouped by sequence in batch order.
        var sequenceOfRow = new int[T];
        var positionOfRow = new int[T];
        var steeringOfRow = new SequenceSteering?[T];
        for (int s = 0, r = 0; s < batch.Count; s++)
        {
            ForwardSequence seq = batch[s];
            if (seq.Tokens.Length == 0) throw new ArgumentException($"sequence {s} of the batch has no new tokens");
            seq.Steering?.Validate(c);
            seq.Cache.Reserve(seq.Cache.Length + seq.Tokens.Length);
            for (int i = 0; i < seq.Tokens.Length; i++, r++)
            {
                sequenceOfRow[r] = s;
                positionOfRow[r] = seq.Cache.Length + i;
                steeringOfRow[r] = seq.Steering;
            }
        }
        var layout = new BatchLayout(sequenceOfRow, positionOfRow);

        // Taken, not shared: a second Forward running at the same time allocates its own.
        Workspace ws = Interlocked.Exchange(ref _workspace, null) is { } free && free.Rows >= T ? free : new Workspace(c, T);
        var steering = new BatchSteering(steeringOfRow, positionOfRow, c, ref ws.SteerVectors, ref ws.SteerHeadVectors);
        float[] x = ws.X, xn = ws.Xn, qkv = ws.Qkv, q = ws.Q, k = ws.K, v = ws.V, att = ws.Att, delta = ws.Delta, gate = ws.Gate, up = ws.Up;

        long t0 = OpProfile.Start();
        Embed(batch, x);
        Profile?.Stop("embedding", t0);
        Record(sink, 0, x, T, layout);

        for (int l = 0; l < c.NumLayers; l++)
        {
            LayerWeights w = Weights.Layers[l];
            PackedLayer? p = _packed?[l];

            // h = x + attention(attention_norm(x))
            Norm(x, w.InputNorm, xn, T);
            QkvProjection(xn, w, p, qkv, q, k, v, T);
            if (w.QNorm is not null) Norm(q, w.QNorm, q, T * c.NumHeads);
            if (w.KNorm is not null) Norm(k, w.KNorm, k, T * c.NumKvHeads);
            Rotate(q, T, c.NumHeads, positionOfRow);
            Rotate(k, T, c.NumKvHeads, positionOfRow);
            Attend(batch, l, q, k, v, att);
            SteerAttention(att, T, l, steering);                                    // blocks.L.attn.hook_z
            Linear("o_proj", att, w.O, p?.O, delta, T);
            AddResidualAndSteer(x, delta, T, l, SteeringHook.ResidMid, steering);   // blocks.L.hook_resid_mid

            // out = h + feed_forward(ffn_norm(h)), then the steering add at this block's output
            Norm(x, w.PostAttentionNorm, xn, T);
            Linear("gate_proj", xn, w.Gate, p?.Gate, gate, T);
            Linear("up_proj", xn, w.Up, p?.Up, up, T);
            Swiglu(gate, up, T);
            Linear("down_proj", gate, w.Down, p?.Down, delta, T);
            AddResidualAndSteer(x, delta, T, l, SteeringHook.ResidPost, steering);  // blocks.L.hook_resid_post

            if (l < c.NumLayers - 1) Record(sink, l + 1, x, T, layout);
        }

        Norm(x, Weights.FinalNorm, x, T);
        Record(sink, c.NumLayers, x, T, layout);

        foreach (ForwardSequence seq in batch) seq.Cache.Commit(seq.Tokens.Length);
        Logits(batch, ws, logits);
        _workspace = ws;
    }

    void Record(IHiddenStateSink? sink, int entry, float[] x, int rows, BatchLayout layout)
    {
        if (sink is null) return;
        long t0 = OpProfile.Start();
        sink.Record(entry, x.AsSpan(0, rows * Config.HiddenSize), layout);
        Profile?.Stop("capture", t0);
    }

    /// <summary>The activation buffers of a forward pass over up to <see cref="Rows"/> tokens.</summary>
    sealed class Workspace(ModelConfig c, int rows)
    {
        public int Rows { get; } = rows;
        public readonly float[] X = new float[rows * c.HiddenSize];              // (T, H) residual stream
        public readonly float[] Xn = new float[rows * c.HiddenSize];             // (T, H) normed input of a sublayer
        public readonly float[] Qkv = new float[rows * (c.QDim + 2 * c.KvDim)];  // (T, nh*hd + 2·nkv*hd) stacked projections
        public readonly float[] Q = new float[rows * c.QDim];                    // (T, nh*hd)
        public readonly float[] K = new float[rows * c.KvDim];                   // (T, nkv*hd)
        public readonly float[] V = new float[rows * c.KvDim];                   // (T, nkv*hd)
        public readonly float[] Att = new float[rows * c.QDim];                  // (T, nh*hd) attention output before O
        public readonly float[] Delta = new float[rows * c.HiddenSize];          // (T, H) sublayer output
        public readonly float[] Gate = new float[rows * c.IntermediateSize];     // (T, I)
        public readonly float[] Up = new float[rows * c.IntermediateSize];       // (T, I)
        public float[] Logits = [];     // (R, V) the lm_head output of a batch of several sequences, grown as needed
        public float[] SteerVectors = []; // (distinct steering vectors, H), grown as needed
        public float[] SteerHeadVectors = []; // (distinct attn_z steering vectors, nh*hd), grown as needed
    }

    /// <summary>Logit rows beyond this are not kept in the workspace between passes (a scoring batch's (T, V) can be gigabytes).</summary>
    const long RetainedLogitFloats = 32L << 20;

    void Embed(IReadOnlyList<ForwardSequence> batch, float[] x)
    {
        int H = Config.HiddenSize, r = 0;
        foreach (ForwardSequence seq in batch)
            foreach (int token in seq.Tokens)
            {
                if ((uint)token >= (uint)Config.VocabSize)
                    throw new ArgumentException($"token id {token} is outside the vocabulary (size {Config.VocabSize})");
                Weights.Embedding.ReadRow(token, x.AsSpan(r++ * H, H));
            }
    }

    /// <summary>
    /// The lm_head over every row that needs logits, as one product: the weights are read once per
    /// step, not once per sequence. One sequence's rows go straight into its buffer; several
    /// sequences' go through the workspace and are copied out.
    /// </summary>
    void Logits(IReadOnlyList<ForwardSequence> batch, Workspace ws, float[][] logits)
    {
        int H = Config.HiddenSize, V = Config.VocabSize, rows = 0;
        foreach (ForwardSequence seq in batch) rows += LogitBuffers.Rows(seq);
        float[] selected = ws.Xn; // (rows, H) the final-normed states that need logits; rows ≤ T, and Xn is free by now
        int r = 0, o = 0;
        foreach (ForwardSequence seq in batch)
        {
            int n = seq.Tokens.Length, count = LogitBuffers.Rows(seq), first = seq.AllLogits ? r : r + n - 1;
            ws.X.AsSpan(first * H, count * H).CopyTo(selected.AsSpan(o * H));
            o += count;
            r += n;
        }
        if (batch.Count == 1)
        {
            Linear("lm_head", selected, Weights.LmHead, _lmHead, logits[0], rows);
            return;
        }

        // Written in full before it is read: no zeroing (megabytes per decode step).
        long floats = (long)rows * V;
        float[] all = ws.Logits.Length >= floats ? ws.Logits : GC.AllocateUninitializedArray<float>(checked((int)floats));
        if (floats <= RetainedLogitFloats) ws.Logits = all;
        Linear("lm_head", selected, Weights.LmHead, _lmHead, all, rows);
        o = 0;
        for (int s = 0; s < batch.Count; s++)
        {
            int count = LogitBuffers.Rows(batch[s]);
            all.AsSpan(o * V, count * V).CopyTo(logits[s]);
            o += count;
        }
    }

    public void Dispose()
    {
        if (_packed is not null) foreach (PackedLayer p in _packed) p.Dispose();
        _lmHead?.Dispose();
        Weights.Dispose();
    }
}
