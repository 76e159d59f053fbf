using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;

namespace SteerEngine.Training.Cuda;

/// <summary>
/// One device's share of BiPO's steered pass, the CUDA mirror of <see cref="SteeredLogProb"/> and
/// <see cref="DecoderBlock"/>: the prefix (blocks 0..L), the steered forward keeping each upper block's input,
/// the LM head's log-softmax over this rank's vocabulary slice, and the backward, which runs each block's
/// input-gradient kernels and GEMMs on the transposed weights from the block's activations: kept from the forward
/// for the lowest upper blocks that fit the keep budget (and the top block, whose activations the forward leaves in
/// the shared buffers, when the budget is not zero), recomputed from the block's saved input for the others. bf16 into every GEMM (f32 accumulation), f32
/// residual stream and gradients, as in the inference forward (Runtime.Cuda.CudaTransformer).
/// Tensor parallel mirrors the forward: the forward all-reduces after O and down, the backward after the
/// products with the column-parallel QKV and gate|up weights and the vocab-parallel LM head; the data-parallel
/// group all-reduces the vector's gradient.
/// </summary>
sealed class CudaBipoRank : IDisposable
{
    readonly ModelConfig _c;
    readonly CudaCollectives? _tensor, _data;
    readonly int _tensorRank, _dataRank;
    Batch? _batch;  // this replica's share of the batch, whose inputs are on the device
    int _layer;     // the steering layer of the prefix in "prefix"
    bool _keep;     // a keep budget was given: the top block's activations outlive the forward

    public CudaBipoRank(ModelConfig config, CudaDevice device, RankShape shape, DeviceWeights weights,
        CudaCollectives? tensor, int tensorRank, CudaCollectives? data, int dataRank)
    {
        _c = config;
        Device = device;
        Shape = shape;
        Weights = weights;
        _tensor = tensor;
        _tensorRank = tensorRank;
        _data = data;
        _dataRank = dataRank;
        Workspace = new Workspace(device);
    }

    public CudaDevice Device { get; }
    public RankShape Shape { get; }
    public DeviceWeights Weights { get; }
    internal Workspace Workspace { get; }

    /// <summary>Largest device bytes held in buffers (weights excluded) at the end of any pass.</summary>
    public long PeakWorkspaceBytes { get; private set; }

    /// <summary>The LM head runs over chunks of response rows whose (rows, vocab slice) f32 logits fit this many bytes.</summary>
    public long LogitChunkBytes { get; set; } = 256L << 20;

    /// <summary>How many of the lowest upper blocks keep their activations for the current batch (set by <see cref="Prepare"/>).</summary>
    public int KeptBlocks { get; private set; }

    /// <summary>Block forwards the backward has run to recompute activations it did not keep, since this rank was made.</summary>
    public long RecomputedBlocks { get; private set; }

    /// <summary>The device addresses of one batch's inputs (one upload) and its shape.</summary>
    sealed class Batch
    {
        public required SequenceBatch Host;
        public required int Rows, Responses, MaxLength;
        public required DevicePtr SeqOfRow, PosOfRow, RowStart, Lengths, StartPos, KvBase, KvCap, ResponseRows, Targets, KvLayout;
    }

    /// <summary>
    /// What a block's backward reads of its forward: the raw QKV projection (T, qd + 2·kvd) f32, the rotated q (T, qd)
    /// bf16, the per-sequence addresses (S) of its keys and values ((2, n, kvd) bf16 each), h after the attention
    /// residual (T, H) f32 and gate|up (T, 2·I) f32.
    /// </summary>
    readonly record struct Activations(DevicePtr Qkv, DevicePtr Q, DevicePtr KvBase, DevicePtr H, DevicePtr GateUp);

    int T => _batch!.Rows;
    int H => _c.HiddenSize;
    float Eps => (float)_c.RmsNormEps;

    /// <summary>
    /// Uploads <paramref name="batch"/> (null: this replica has no share) and runs the unsteered blocks 0..layer
    /// into the prefix (T, H). The passes of this batch keep the activations of the lowest upper blocks whose
    /// <see cref="KeptBlockBytes(RankShape, int, long)"/> fit <paramref name="keepBytes"/> on this device (the top block's stay in the
    /// shared buffers at no cost when keepBytes is not 0); 0 recomputes every upper block in the backward.
    /// </summary>
    public void Prepare(SequenceBatch? batch, int layer, long keepBytes = 0) =>
        Prepare(batch, layer, keepBytes > 0, batch is null ? 0 : (int)Math.Min(keepBytes / KeptSlices(batch.Rows).Bytes, int.MaxValue));

    /// <summary>
    /// As <see cref="Prepare(SequenceBatch?, int, long)"/>, keeping the lowest <paramref name="keptBlocks"/> upper blocks (at most
    /// all but the top one) and, with <paramref name="keepTop"/>, leaving the top block's activations in place.
    /// </summary>
    public void Prepare(SequenceBatch? batch, int layer, bool keepTop, int keptBlocks)
    {
        _batch = null;
        _layer = layer;
        _keep = keepTop;
        KeptBlocks = 0;
        if (batch is null) return;
        int T = batch.Rows, S = batch.Count;
        // Each sequence's keys and values in one (2, n, kvd) bf16 region of "kv" (rope.cu's cache layout at layer 0),
        // and of each kept block's slice of "kept": S addresses for "kv", then S for each kept block.
        long blockBytes = KeptSlices(T).Bytes;
        KeptBlocks = Math.Clamp(keptBlocks, 0, Math.Max(0, Blocks - 1));
        DevicePtr kv = Workspace.Get("kv", 2L * T * Shape.KvDim * 2);
        DevicePtr kept = KeptBlocks > 0 ? Workspace.Get("kept", KeptBlocks * blockBytes, exact: true) : DevicePtr.Null;
        var kvBase = new ulong[S * (1 + KeptBlocks)];
        for (int s = 0; s < S; s++)
        {
            long offset = 2L * batch.Offsets[s] * Shape.KvDim * 2;
            kvBase[s] = (kv + offset).Address;
            for (int k = 0; k < KeptBlocks; k++) kvBase[(1 + k) * S + s] = (kept + k * blockBytes + KeptSlices(T).Kv + offset).Address;
        }
        DevicePtr tokenRows = Workspace.Get("tokens", 4L * T);
        DevicePtr[] p = Workspace.Upload(false, StepInputs(batch, kvBase));
        Device.Upload<int>(tokenRows, batch.Sequences.SelectMany(q => q.Tokens).ToArray());
        int[] lengths = Enumerable.Range(0, S).Select(batch.Length).ToArray();
        _batch = new Batch
        {
            Host = batch, Rows = T, Responses = batch.ResponseRows.Length, MaxLength = lengths.Max(),
            SeqOfRow = p[0], PosOfRow = p[1], RowStart = p[2], Lengths = p[3], StartPos = p[4], KvBase = p[5], KvCap = p[6],
            ResponseRows = p[7], Targets = p[8], KvLayout = p[9],
        };

        DevicePtr x = Workspace.Get("prefix", 4L * T * H), next = Workspace.Get("input0", 4L * T * H);
        Device.Launch("embedding_gather", new Dim3((uint)T), Threads(H), Weights.Embedding, tokenRows, x, H);
        for (int l = 0; l <= layer; l++)
        {
            BlockForward(l, x, next, Shared());
            Device.CopyOnDevice(x, next, 4L * T * H);
        }
        NotePeak();
    }

    /// <summary>
    /// The batch's inputs in one upload: each row's sequence and position, each sequence's first row, length, start
    /// position, key/value addresses (<paramref name="kvBase"/>) and capacity, the response rows and their targets, and the
    /// page table the forward kernels read the cache through (here each sequence is one page as long as itself).
    /// </summary>
    static Array[] StepInputs(SequenceBatch batch, ulong[] kvBase)
    {
        int T = batch.Rows, S = batch.Count;
        int[] lengths = Enumerable.Range(0, S).Select(batch.Length).ToArray();
        var seqOfRow = new int[T];
        for (int s = 0; s < S; s++) Array.Fill(seqOfRow, s, batch.Offsets[s], lengths[s]);
        int[] kvLayout = Enumerable.Range(0, S).SelectMany(s => new[] { s, lengths[s] }).ToArray();
        return [seqOfRow, batch.PositionOfRow, batch.Offsets[..S], lengths, new int[S], kvBase, lengths, batch.ResponseRows, batch.Targets, kvLayout];
    }

    /// <summary>
    /// The headroom the automatic keep budget leaves on a device of <paramref name="totalBytes"/>: 10 % of it, at least
    /// 1 GiB — for what the budget cannot see: cuBLAS's and NCCL's own allocations made after the query, the CUDA
    /// allocator's granularity, other processes on the device.
    /// </summary>
    public static long AutoKeepMargin(long totalBytes) => Math.Max(totalBytes / 10, 1L << 30);

    /// <summary>
    /// The automatic keep budget for <paramref name="batch"/> steered at <paramref name="layer"/>: this device's free
    /// memory and the buffers it holds now (a pass reuses or regrows them), less <see cref="AutoKeepMargin"/> and every
    /// other buffer a pass of this batch will hold (<see cref="PassBuffers"/>), and the most lowest upper blocks whose
    /// kept activations fit in it. A rank without a share of the batch sets no limit.
    /// </summary>
    public (int KeptBlocks, long BudgetBytes) AutoKeep(SequenceBatch? batch, int layer)
    {
        if (batch is null) return (int.MaxValue, long.MaxValue);
        var (free, total) = Device.MemoryInfo();
        long available = free + Workspace.DeviceBytes - AutoKeepMargin(total);
        long budget = available - Workspace.BytesAfter(PassBuffers(batch, layer, 0));
        int k = Math.Max(0, _c.NumLayers - 2 - layer);
        while (k > 0 && Workspace.BytesAfter(PassBuffers(batch, layer, k)) > available) k--;
        return (k, Math.Max(0, budget));
    }

    /// <summary>
    /// Every device buffer (name, bytes, grown exactly) a pass of <paramref name="batch"/> at <paramref name="layer"/>
    /// keeping <paramref name="keptBlocks"/> blocks asks for, in <see cref="Prepare(SequenceBatch?, int, bool, int)"/>,
    /// <see cref="Forward"/> and <see cref="Backward"/>: what the automatic budget is computed from.
    /// </summary>
    IEnumerable<(string Name, long Bytes, bool Exact)> PassBuffers(SequenceBatch batch, int layer, int keptBlocks)
    {
        RankShape s = Shape;
        long T = batch.Rows, R = batch.ResponseRows.Length, I = s.Intermediate, VL = s.VocabSlice, H = _c.HiddenSize;
        long chunk = Math.Clamp(LogitChunkBytes / (4L * VL), 1, Math.Max(1, R));
        int blocks = _c.NumLayers - 1 - layer;
        if (keptBlocks > 0) yield return ("kept", keptBlocks * KeptSlices(T).Bytes, true);
        yield return ("kv", 2 * T * s.KvDim * 2, false);
        yield return ("tokens", 4 * T, false);
        yield return ("step_inputs", Workspace.UploadBytes(StepInputs(batch, new ulong[batch.Count * (1 + keptBlocks)])), false);
        yield return ("qkv", 4 * T * s.QkvDim, false);
        yield return ("q", 2 * T * s.QDim, false);
        yield return ("h", 4 * T * H, false);
        yield return ("gate_up", 8 * T * I, false);
        yield return ("xn", 2 * T * Math.Max(H, I), false);
        yield return ("att", 2 * T * s.QDim, false);
        yield return ("delta", 4 * T * H, false);
        yield return ("prefix", 4 * T * H, false);
        for (int k = 0; k <= blocks; k++) yield return ($"input{k}", 4 * T * H, false);
        yield return ("vector", 4 * H, false);
        yield return ("response_rows", 4 * R * H, false);
        yield return ("normed", 2 * R * H, false);
        yield return ("logits", 4 * chunk * VL, false);
        yield return ("lse_stats", 12 * R, false);
        if (_tensor is not null) yield return ("lse_stats_all", 12 * R * s.Ranks, false);
        yield return ("grad", 4 * H, false);
        yield return ("d_cur", 4 * T * H, false);
        yield return ("d_next", 4 * T * H, false);
        yield return ("d_logits", 2 * chunk * VL, false);
        yield return ("d_normed", 4 * R * H, false);
        yield return ("lse", 4 * R, false);
        yield return ("d_row", 4 * R, false);
        yield return ("d_bf16", 2 * T * Math.Max(Math.Max(H, 2 * I), s.QkvDim), false);
        yield return ("d_wide", 4 * T * Math.Max(I, s.QkvDim), false);
        yield return ("d_xn", 4 * T * H, false);
        yield return ("d_h", 4 * T * H, false);
        yield return ("d_att", 4 * T * s.QDim, false);
        yield return ("attn_stats", 8 * T * s.Heads, false);
    }

    /// <summary>Byte offsets of the parts of one kept block's slice of "kept", each 256-byte aligned, and the slice's size.</summary>
    static (long Qkv, long Q, long Kv, long H, long GateUp, long Bytes) KeptSlices(RankShape s, int hidden, long rows)
    {
        static long Align(long n) => (n + 255) & ~255L;
        long qkv = 0, h = qkv + Align(4 * rows * s.QkvDim), gateUp = h + Align(4 * rows * hidden);
        long q = gateUp + Align(8 * rows * s.Intermediate), kv = q + Align(2 * rows * s.QDim);
        return (qkv, q, kv, h, gateUp, kv + Align(4 * rows * s.KvDim));
    }

    (long Qkv, long Q, long Kv, long H, long GateUp, long Bytes) KeptSlices(long rows) => KeptSlices(Shape, H, rows);

    /// <summary>
    /// Device bytes one kept block's activations take on a rank of shape <paramref name="s"/> for <paramref name="rows"/>
    /// rows (its slice of the heads and the MLP under tensor parallelism, the whole (rows, H) h): what the keep budget is
    /// counted in. f32 QKV, h and gate|up, bf16 q, keys and values.
    /// </summary>
    public static long KeptBlockBytes(RankShape s, int hidden, long rows) => KeptSlices(s, hidden, rows).Bytes;

    /// <summary>The buffers the blocks that keep nothing share: a block's backward finds there what its last forward left.</summary>
    Activations Shared()
    {
        Batch b = _batch!;
        RankShape s = Shape;
        return new(Workspace.Get("qkv", 4L * T * s.QkvDim), Workspace.Get("q", 2L * T * s.QDim), b.KvBase,
            Workspace.Get("h", 4L * T * H), Workspace.Get("gate_up", 8L * T * s.Intermediate));
    }

    /// <summary>Upper block L+1+k's activations: its own slice of "kept" for the lowest <see cref="KeptBlocks"/>, else the shared buffers.</summary>
    Activations Of(int k)
    {
        if (k >= KeptBlocks) return Shared();
        var p = KeptSlices(T);
        DevicePtr slice = Workspace.Get("kept", KeptBlocks * p.Bytes, exact: true) + k * p.Bytes;
        return new(slice + p.Qkv, slice + p.Q, _batch!.KvBase + 8L * (1 + k) * _batch.Host.Count, slice + p.H, slice + p.GateUp);
    }

    /// <summary>
    /// The steered forward: h_L + multiplier·vector through blocks L+1.., the final norm and the LM head on the
    /// response rows. Returns (R) each response token's log-prob and (R) the log-partition the backward needs.
    /// </summary>
    public (double[] LogProbs, float[] LogSumExp) Forward(ReadOnlySpan<float> vector, float multiplier)
    {
        if (_batch is null) return ([], []);
        DevicePtr v = Workspace.Get("vector", 4L * H);
        Device.Upload(v, vector);
        Device.Launch("steer_rows", new Dim3((uint)T), Threads(H), Workspace.Get("prefix", 4L * T * H), v, multiplier, Input(0), H);
        for (int k = 1; k < Blocks + 1; k++) BlockForward(_layer + k, Input(k - 1), Input(k), Of(k - 1));
        var result = LmHeadForward(Input(Blocks));
        NotePeak();
        return result;
    }

    /// <summary>
    /// The vector's gradient (H) = multiplier · Σ_rows ∂f/∂h_L, f = Σ dRow · (token log-probs), summed over the
    /// data-parallel replicas: the same bits on every rank. Runs right after <see cref="Forward"/>.
    /// </summary>
    public float[] Backward(ReadOnlySpan<float> dRow, ReadOnlySpan<float> logSumExp, float multiplier)
    {
        DevicePtr grad = Workspace.Get("grad", 4L * H);
        if (_batch is null) Device.Zero(grad, 4L * H);
        else
        {
            DevicePtr dCur = Workspace.Get("d_cur", 4L * T * H), dNext = Workspace.Get("d_next", 4L * T * H);
            LmHeadBackward(Input(Blocks), dRow, logSumExp, dCur);
            for (int k = Blocks - 1; k >= 0; k--)
            {
                // Kept: the lowest blocks' own slices, and the top block's shared buffers, which nothing since its forward wrote.
                Activations a = Of(k);
                if (k >= KeptBlocks && !(_keep && k == Blocks - 1))
                {
                    BlockForward(_layer + 1 + k, Input(k), DevicePtr.Null, a);
                    RecomputedBlocks++;
                }
                BlockBackward(_layer + 1 + k, Input(k), dCur, dNext, a);
                (dCur, dNext) = (dNext, dCur);
            }
            Device.Launch("sum_rows", new Dim3((uint)((H + 31) / 32)), new Dim3(32), dCur, T, H, multiplier, grad);
        }
        _data?.AllReduceSum(_dataRank, grad, grad, H);
        var result = new float[H];
        Device.Download<float>(grad, result);
        NotePeak();
        return result;
    }

    /// <summary>Upper blocks: L+1 .. N−1.</summary>
    int Blocks => _c.NumLayers - 1 - _layer;

    /// <summary>(T, H) the input of block L+1+k; k = Blocks is the last block's output.</summary>
    DevicePtr Input(int k) => Workspace.Get($"input{k}", 4L * T * H);

    void AllReduceTensor(DevicePtr buffer, long count) => _tensor?.AllReduceSum(_tensorRank, buffer, buffer, count);

    /// <summary>
    /// output = block l(x) when output is not null; either way the activations the backward reads stay in
    /// <paramref name="a"/>: the raw QKV projection, rotated q, keys and values, the post-attention residual h, gate|up.
    /// </summary>
    void BlockForward(int l, DevicePtr x, DevicePtr output, Activations a)
    {
        Batch b = _batch!;
        RankShape s = Shape;
        DeviceLayer w = Weights.Layers[l];
        CudaDevice d = Device;
        int T = b.Rows, I = s.Intermediate, hd = s.HeadDim;
        DevicePtr xn = Workspace.Get("xn", 2L * T * Math.Max(H, I));     // (T, H) bf16 normed input; (T, I) bf16 activation
        DevicePtr att = Workspace.Get("att", 2L * T * s.QDim);           // (T, qd) bf16
        DevicePtr delta = Workspace.Get("delta", 4L * T * H);            // (T, H) f32 sublayer output
        DevicePtr qkv = a.Qkv, q = a.Q, h = a.H, gateUp = a.GateUp;

        // h = x + attention(attention_norm(x))
        d.Launch("rmsnorm", new Dim3((uint)T), Threads(H), x, w.InputNorm, DevicePtr.Null, xn, H, Eps);
        Linear.Forward(d, xn, w.Qkv, qkv, T, s.QkvDim, H);
        d.Launch("qk_norm_rope", new Dim3((uint)T), new Dim3((uint)(32 * Math.Min(s.Heads + s.KvHeads, 32))),
            qkv, Weights.InvFreq, b.PosOfRow, b.SeqOfRow, w.QNorm, w.KNorm, Eps, q, a.KvBase, b.KvLayout, 0, s.Heads, s.KvHeads, hd);
        d.Launch($"attention_prefill_hd{hd}", new Dim3((uint)((b.MaxLength + 63) / 64), (uint)s.Heads, (uint)b.Host.Count), new Dim3(128),
            q, att, b.RowStart, b.Lengths, b.StartPos, a.KvBase, b.KvLayout, 0, s.Heads, s.KvHeads, 1f / MathF.Sqrt(hd));
        Linear.Forward(d, att, w.O, delta, T, H, s.QDim);
        AllReduceTensor(delta, (long)T * H);
        d.CopyOnDevice(h, x, 4L * T * H);
        ResidualAdd(h, delta);

        // out = h + feed_forward(ffn_norm(h))
        d.Launch("rmsnorm", new Dim3((uint)T), Threads(H), h, w.PostNorm, DevicePtr.Null, xn, H, Eps);
        Linear.Forward(d, xn, w.GateUp, gateUp, T, 2 * I, H);
        if (output.IsNull) return;
        d.Launch("swiglu", new Dim3((uint)T), Threads(I), gateUp, xn, I);
        Linear.Forward(d, xn, w.Down, delta, T, H, I);
        AllReduceTensor(delta, (long)T * H);
        d.CopyOnDevice(output, h, 4L * T * H);
        ResidualAdd(output, delta);
    }

    void ResidualAdd(DevicePtr x, DevicePtr delta) =>
        Device.Launch("residual_add_steer", new Dim3((uint)T), Threads(H), x, delta, H,
            DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, DevicePtr.Null, 0, DevicePtr.Null);

    /// <summary>dx = ∂(dOut · block l(x))/∂x from the activations <paramref name="a"/> a <see cref="BlockForward"/> of x left. (T, H) each.</summary>
    void BlockBackward(int l, DevicePtr x, DevicePtr dOut, DevicePtr dx, Activations a)
    {
        Batch b = _batch!;
        RankShape s = Shape;
        DeviceLayer w = Weights.Layers[l];
        CudaDevice d = Device;
        int T = b.Rows, I = s.Intermediate, hd = s.HeadDim;
        DevicePtr dBf = Workspace.Get("d_bf16", 2L * T * Math.Max(Math.Max(H, 2 * I), s.QkvDim)); // bf16 GEMM inputs
        DevicePtr dWide = Workspace.Get("d_wide", 4L * T * Math.Max(I, s.QkvDim));   // (T, I) dAct, then (T, qd+2kvd) dQKV
        DevicePtr dXn = Workspace.Get("d_xn", 4L * T * H);                          // (T, H) gradient at a normed input
        DevicePtr dH = Workspace.Get("d_h", 4L * T * H);                            // (T, H) gradient at h
        DevicePtr dAtt = Workspace.Get("d_att", 4L * T * s.QDim);                   // (T, qd)
        DevicePtr stats = Workspace.Get("attn_stats", 8L * T * s.Heads);            // (T, nh, 2) lse, D
        DevicePtr qkv = a.Qkv, q = a.Q, h = a.H, gateUp = a.GateUp;

        // MLP: out = h + down(silu(gate)·up), gate|up = W·ffn_norm(h).
        d.Launch("rows_to_bf16", new Dim3((uint)T), Threads(H), dOut, dBf, H);
        BackwardProduct(dBf, w.Down, dWide, T, outDim: H, inDim: I);
        d.Launch("swiglu_backward", new Dim3((uint)T), Threads(I), gateUp, dWide, dBf, I);
        BackwardProduct(dBf, w.GateUp, dXn, T, outDim: 2 * I, inDim: H);
        AllReduceTensor(dXn, (long)T * H);
        d.CopyOnDevice(dH, dOut, 4L * T * H);
        d.Launch("rmsnorm_backward", new Dim3((uint)T), Threads(H), h, DevicePtr.Null, w.PostNorm, dXn, dH, H, Eps, 1);

        // Attention: h = x + o_proj(attend(rope(norm(q)), rope(norm(k)), v)).
        d.Launch("rows_to_bf16", new Dim3((uint)T), Threads(H), dH, dBf, H);
        BackwardProduct(dBf, w.O, dAtt, T, outDim: H, inDim: s.QDim);
        float scale = 1f / MathF.Sqrt(hd);
        d.Launch("attention_backward_query", new Dim3((uint)T, (uint)s.Heads), new Dim3(32),
            q, dAtt, b.SeqOfRow, b.PosOfRow, a.KvBase, b.KvCap, s.Heads, s.KvHeads, hd, scale, stats, dWide);
        d.Launch("attention_backward_key", new Dim3((uint)T, (uint)s.KvHeads), new Dim3(32),
            q, dAtt, b.SeqOfRow, b.PosOfRow, b.RowStart, b.Lengths, a.KvBase, b.KvCap, s.Heads, s.KvHeads, hd, scale, stats, dWide);
        d.Launch("qk_norm_rope_backward", new Dim3((uint)T), new Dim3((uint)(32 * Math.Min(s.Heads + s.KvHeads, 32))),
            dWide, qkv, Weights.InvFreq, b.PosOfRow, w.QNorm, w.KNorm, Eps, dBf, s.Heads, s.KvHeads, hd);
        BackwardProduct(dBf, w.Qkv, dXn, T, outDim: s.QkvDim, inDim: H);
        AllReduceTensor(dXn, (long)T * H);
        d.CopyOnDevice(dx, dH, 4L * T * H);
        d.Launch("rmsnorm_backward", new Dim3((uint)T), Threads(H), x, DevicePtr.Null, w.InputNorm, dXn, dx, H, Eps, 1);
    }

    /// <summary>
    /// dx (rows, in) f32 = dy (rows, out) bf16 · W for W (out, in) bf16 as stored: in cuBLAS's column-major view
    /// the stored W is (in × out) and dyᵀ is (out × rows), so dxᵀ = W_stored · dyᵀ with no transposes.
    /// </summary>
    void BackwardProduct(DevicePtr dy, DevicePtr w, DevicePtr dx, int rows, int outDim, int inDim) =>
        Device.GemmEx(GemmOp.N, GemmOp.N, m: inDim, n: rows, k: outDim,
            1f, w, CudaDataType.BF16, lda: inDim, dy, CudaDataType.BF16, ldb: outDim,
            0f, dx, CudaDataType.F32, ldc: inDim);

    /// <summary>The final norm of the response rows of <paramref name="last"/> into "normed" (R, H) bf16.</summary>
    DevicePtr FinalNorm(DevicePtr last)
    {
        Batch b = _batch!;
        DevicePtr rows = Workspace.Get("response_rows", 4L * b.Responses * H);
        DevicePtr normed = Workspace.Get("normed", 2L * b.Responses * H);
        Device.Launch("gather_rows_f32", new Dim3((uint)b.Responses), Threads(H), last, b.ResponseRows, rows, H);
        Device.Launch("rmsnorm", new Dim3((uint)b.Responses), Threads(H), rows, Weights.FinalNorm, DevicePtr.Null, normed, H, Eps);
        return normed;
    }

    int Chunk => (int)Math.Clamp(LogitChunkBytes / (4L * Shape.VocabSlice), 1, _batch!.Responses);
    int VocabFirst => Shape.Rank * Shape.VocabSlice;
    int VocabValid => Math.Clamp(_c.VocabSize - VocabFirst, 0, Shape.VocabSlice);

    (double[] LogProbs, float[] LogSumExp) LmHeadForward(DevicePtr last)
    {
        Batch b = _batch!;
        int R = b.Responses, VL = Shape.VocabSlice, ranks = Shape.Ranks, chunk = Chunk;
        DevicePtr normed = FinalNorm(last);
        DevicePtr logits = Workspace.Get("logits", 4L * chunk * VL);     // (chunk, VL) f32
        DevicePtr stats = Workspace.Get("lse_stats", 12L * R);           // (R, 3) this slice's max, Σ exp, target logit
        for (int first = 0; first < R; first += chunk)
        {
            int n = Math.Min(chunk, R - first);
            Linear.Forward(Device, normed + 2L * first * H, Weights.LmHead, logits, n, VL, H);
            Device.Launch("log_softmax_partial", new Dim3((uint)n), new Dim3(256), logits, VL, VocabValid, VocabFirst,
                b.Targets + 4L * first, stats + 12L * first);
        }
        DevicePtr all = stats;
        if (_tensor is not null)
        {
            all = Workspace.Get("lse_stats_all", 12L * R * ranks);     // (ranks, R, 3)
            _tensor.AllGather(_tensorRank, stats, all, 3L * R);
        }
        var host = new float[3 * R * ranks];
        Device.Download<float>(all, host);
        // Every rank merges the slices in rank order, in double: the same log-partition everywhere.
        var logProbs = new double[R];
        var lse = new float[R];
        for (int i = 0; i < R; i++)
        {
            double max = double.NegativeInfinity, target = double.NegativeInfinity;
            for (int r = 0; r < ranks; r++) max = Math.Max(max, host[(r * R + i) * 3]);
            double sum = 0;
            for (int r = 0; r < ranks; r++)
            {
                int at = (r * R + i) * 3;
                if (host[at + 1] > 0) sum += host[at + 1] * Math.Exp(host[at] - max);
                target = Math.Max(target, host[at + 2]);
            }
            lse[i] = (float)(max + Math.Log(sum));
            logProbs[i] = target - lse[i];
        }
        return (logProbs, lse);
    }

    /// <summary>dCur (T, H) = the gradient at the last block's output: zero except on the response rows.</summary>
    void LmHeadBackward(DevicePtr last, ReadOnlySpan<float> dRow, ReadOnlySpan<float> logSumExp, DevicePtr dCur)
    {
        Batch b = _batch!;
        int R = b.Responses, VL = Shape.VocabSlice, chunk = Chunk;
        DevicePtr normed = FinalNorm(last);
        DevicePtr logits = Workspace.Get("logits", 4L * chunk * VL);     // (chunk, VL) f32
        DevicePtr dz = Workspace.Get("d_logits", 2L * chunk * VL);       // (chunk, VL) bf16
        DevicePtr dNormed = Workspace.Get("d_normed", 4L * R * H);       // (R, H)
        DevicePtr lse = Workspace.Get("lse", 4L * R), dr = Workspace.Get("d_row", 4L * R);
        Device.Upload(lse, logSumExp);
        Device.Upload(dr, dRow);
        for (int first = 0; first < R; first += chunk)
        {
            int n = Math.Min(chunk, R - first);
            Linear.Forward(Device, normed + 2L * first * H, Weights.LmHead, logits, n, VL, H);
            Device.Launch("log_softmax_backward", new Dim3((uint)n), new Dim3(256), logits, VL, VocabValid, VocabFirst,
                b.Targets + 4L * first, lse + 4L * first, dr + 4L * first, dz);
            BackwardProduct(dz, Weights.LmHead, dNormed + 4L * first * H, n, outDim: VL, inDim: H);
        }
        AllReduceTensor(dNormed, (long)R * H);
        Device.Zero(dCur, 4L * T * H);
        Device.Launch("rmsnorm_backward", new Dim3((uint)R), Threads(H), last, b.ResponseRows, Weights.FinalNorm, dNormed, dCur, H, Eps, 0);
    }

    void NotePeak() => PeakWorkspaceBytes = Math.Max(PeakWorkspaceBytes, Workspace.DeviceBytes);

    /// <summary>A block size for a row of n elements: about 4 elements per thread, whole warps, at most 1024.</summary>
    static Dim3 Threads(int n) => new((uint)Math.Clamp((n / 4 + 31) / 32 * 32, 32, 1024));

    public void Dispose() => Workspace.Dispose();
}
