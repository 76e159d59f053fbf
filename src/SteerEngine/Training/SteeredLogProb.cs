using System.Numerics.Tensors;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Training.Backward;

namespace SteerEngine.Training;

/// <summary>
/// For a batch of (prompt, response) sequences: each sequence's summed response log-prob under the model
/// steered by h_L ← h_L + m·v at every position (L = <see cref="Layer"/>, the output of block L), and the
/// gradient of any function of those log-probs with respect to v — by hand, input gradients only.
/// <para>
/// Blocks 0..L do not depend on v: <see cref="Prefix"/> runs them once and a caller may reuse the result
/// for any v. <see cref="Forward"/> adds m·v and runs blocks L+1..N−1 keeping only each block's input;
/// <see cref="SteeredPass.Backward"/> goes back through the LM head and log-softmax (response rows only),
/// the final RMSNorm and each block, whose activations it recomputes from the saved input.
/// grad_v = m · Σ_rows ∂f/∂h_L.
/// </para>
/// </summary>
public sealed class SteeredLogProb : ISteeredModel
{
    readonly Transformer _model;
    readonly DecoderBlock[] _blocks;
    readonly WeightProducts _products;
    readonly long _keepBytes;
    DecoderBlock.Workspace? _ws;  // shared by every pass: one block's activations are alive at a time
    SteeredPass? _wsOwner;        // the pass whose last block's activations ws holds
    DecoderBlock.Workspace[] _kept = []; // the lowest upper blocks' activations, kept from forward to backward
    SteeredPass? _keptOwner;      // the pass whose activations _kept holds
    float[] _probabilities = [];  // (R, V) the LM head's softmax, packed products only
    SteeredPass? _probabilitiesOwner;

    /// <param name="products">the weight products' path; the exact f32 one when null</param>
    /// <param name="keepBytes">
    /// memory the forward may spend keeping what the backward would otherwise recompute: the activations of the upper
    /// blocks (the lowest first; the top block's stay in the shared workspace anyway) and, with packed products, the
    /// LM head's (R, V) softmax. 0 recomputes every block from its saved input.
    /// </param>
    public SteeredLogProb(Transformer model, int layer, WeightProducts? products = null, long keepBytes = 0)
    {
        ModelConfig c = model.Config;
        if (layer < 0 || layer >= c.NumLayers)
            throw new ArgumentException($"layer {layer} is out of range: the model has blocks 0..{c.NumLayers - 1}");
        _model = model;
        Layer = layer;
        var rope = new Rope(c);
        var ropeBackward = new RopeBackward(rope);
        _products = products ?? WeightProducts.Exact;
        _keepBytes = keepBytes;
        _blocks = model.Weights.Layers.Select(w => new DecoderBlock(c, w, rope, ropeBackward, _products)).ToArray();
    }

    public int Layer { get; }
    public ModelConfig Config => _model.Config;

    public SequenceBatch Batch(IReadOnlyList<ScoredSequence> sequences) => new(sequences, Config.VocabSize);

    public ISteeredBatch Prepare(IReadOnlyList<ScoredSequence> sequences)
    {
        SequenceBatch batch = Batch(sequences);
        return new PrefixedBatch(this, batch, Prefix(batch));
    }

    /// <summary>A batch and its prefix, kept on the heap.</summary>
    sealed class PrefixedBatch(SteeredLogProb model, SequenceBatch batch, float[] prefix) : ISteeredBatch
    {
        public SequenceBatch Batch => batch;
        public ISteeredPass Forward(ReadOnlySpan<float> vector, float multiplier) => model.Forward(batch, prefix, vector, multiplier);
    }

    /// <summary>(T, H) the unsteered output of block <see cref="Layer"/> for every row of the batch.</summary>
    public float[] Prefix(SequenceBatch batch)
    {
        int H = Config.HiddenSize, T = batch.Rows;
        var x = new float[T * H];
        var next = new float[T * H];
        for (int s = 0, r = 0; s < batch.Count; s++)
            foreach (int token in batch.Sequences[s].Tokens)
                _model.Weights.Embedding.ReadRow(token, x.AsSpan(r++ * H, H));
        DecoderBlock.Workspace ws = Workspace(T, null);
        for (int l = 0; l <= Layer; l++)
        {
            _blocks[l].Forward(batch, x, next, ws);
            (x, next) = (next, x);
        }
        return x;
    }

    /// <summary>Runs blocks L+1.. from h_L + multiplier·vector. prefix: (T, H) from <see cref="Prefix"/>; vector: (H).</summary>
    public SteeredPass Forward(SequenceBatch batch, ReadOnlySpan<float> prefix, ReadOnlySpan<float> vector, float multiplier)
    {
        ModelConfig c = Config;
        int H = c.HiddenSize, T = batch.Rows;
        if (vector.Length != H) throw new ArgumentException($"steering vector has {vector.Length} elements, the model's hidden size is {H}");
        if (prefix.Length != T * H) throw new ArgumentException($"prefix has {prefix.Length} values, expected {T} rows × {H}");

        // inputs[k]: (T, H) the input of block L+1+k; the last entry is the output of the last block.
        var inputs = new float[c.NumLayers - Layer][];
        inputs[0] = new float[T * H];
        for (int r = 0; r < T; r++)
            TensorPrimitives.MultiplyAdd(vector, multiplier, prefix.Slice(r * H, H), inputs[0].AsSpan(r * H, H));
        int R = batch.ResponseRows.Length;
        long budget = _keepBytes;
        bool keepProbabilities = !_products.IsExact && (long)R * c.VocabSize * 4 <= budget;
        if (keepProbabilities) budget -= (long)R * c.VocabSize * 4;
        int kept = KeptWorkspaces(T, inputs.Length - 2, budget);
        DecoderBlock.Workspace ws = Workspace(T, null);
        for (int k = 1; k < inputs.Length; k++)
        {
            inputs[k] = new float[T * H];
            _blocks[Layer + k].Forward(batch, inputs[k - 1], inputs[k], k - 1 < kept ? _kept[k - 1] : ws);
        }

        // Final norm and LM head for the response rows only.
        var normed = new float[R * H]; // (R, H)
        float[] last = inputs[^1];
        for (int i = 0; i < R; i++)
            last.AsSpan(batch.ResponseRows[i] * H, H).CopyTo(normed.AsSpan(i * H, H));
        RmsNorm.Forward(normed, _model.Weights.FinalNorm, normed, R, (float)c.RmsNormEps);
        var tokenLogProbs = new double[R];
        var logSumExp = new float[R];
        if (keepProbabilities && _probabilities.Length < R * c.VocabSize) _probabilities = new float[R * c.VocabSize];
        LmHeadLogSoftmax.Forward(normed, _model.Weights.LmHead, batch.Targets, tokenLogProbs, logSumExp, _products,
            keepProbabilities ? _probabilities.AsSpan(0, R * c.VocabSize) : default);

        var logProbs = new double[batch.Count];
        for (int s = 0, i = 0; s < batch.Count; s++)
            for (int t = 0; t < batch.Sequences[s].ResponseLength; t++, i++) logProbs[s] += tokenLogProbs[i];
        var pass = new SteeredPass(this, batch, multiplier, inputs, normed, logSumExp, logProbs, kept);
        if (inputs.Length > 1 + kept) _wsOwner = pass;
        _keptOwner = kept > 0 ? pass : null;
        _probabilitiesOwner = keepProbabilities ? pass : null;
        return pass;
    }

    /// <summary>
    /// Heap bytes at the peak of a training step (the backward of a pass; weights are memory-mapped and not
    /// counted): the N−L saved block inputs and the prefix, one block workspace, the backward's three (T, H)
    /// gradient buffers, the (R, H) final-normed rows and their gradient, and the LM head's logits chunk and
    /// per-task accumulators; plus what the forward keeps within <paramref name="keepBytes"/> (see the constructor).
    /// </summary>
    public static long PeakBytes(ModelConfig c, long rows, long responseRows, int layer, int threads, long keepBytes = 0)
    {
        long th = 4 * rows * c.HiddenSize;
        long keepable = Math.Max(0, c.NumLayers - layer - 2) * DecoderBlock.Workspace.Bytes(c, rows) + 4 * responseRows * c.VocabSize;
        return (c.NumLayers - layer) * th + th                       // saved inputs, prefix
               + DecoderBlock.Workspace.Bytes(c, rows)
               + 3 * th                                              // dCur, dNext, recompute scratch
               + 2 * 4 * responseRows * c.HiddenSize                 // normed rows, their gradient
               + LmHeadLogSoftmax.ScratchBytes(c.VocabSize, c.HiddenSize, threads)
               + Math.Min(keepBytes, keepable);
    }

    internal DecoderBlock Block(int layer) => _blocks[layer];

    /// <summary>How many of the <paramref name="candidates"/> lowest upper blocks keep their activations within <paramref name="budget"/> bytes; grows _kept to that.</summary>
    int KeptWorkspaces(int rows, int candidates, long budget)
    {
        int n = (int)Math.Clamp(budget / DecoderBlock.Workspace.Bytes(Config, rows), 0, Math.Max(0, candidates));
        if (_kept.Length < n || _kept.Take(n).Any(w => w.Rows < rows))
            _kept = Enumerable.Range(0, n).Select(_ => new DecoderBlock.Workspace(Config, rows)).ToArray();
        _keptOwner = null;
        return n;
    }

    internal DecoderBlock.Workspace Kept(int index, SteeredPass pass) =>
        ReferenceEquals(_keptOwner, pass) ? _kept[index] : throw new InvalidOperationException("kept activations were overwritten");
    internal bool KeptHolds(SteeredPass pass) => ReferenceEquals(_keptOwner, pass);
    internal Span<float> ProbabilitiesOf(SteeredPass pass, int length) =>
        ReferenceEquals(_probabilitiesOwner, pass) ? _probabilities.AsSpan(0, length) : default;

    /// <summary>The shared workspace, grown to at least <paramref name="rows"/> rows, now written by <paramref name="owner"/>.</summary>
    internal DecoderBlock.Workspace Workspace(int rows, SteeredPass? owner)
    {
        if (_ws is null || _ws.Rows < rows) _ws = new DecoderBlock.Workspace(Config, rows);
        _wsOwner = owner;
        return _ws;
    }

    internal bool WorkspaceHoldsLastBlockOf(SteeredPass pass) => ReferenceEquals(_wsOwner, pass);
    internal ModelWeights Weights => _model.Weights;
    internal WeightProducts Products => _products;
}

/// <summary>One steered forward pass, holding what its backward needs: each upper block's input.</summary>
public sealed class SteeredPass : ISteeredPass
{
    readonly SteeredLogProb _owner;
    readonly SequenceBatch _batch;
    readonly float _multiplier;
    readonly float[][] _inputs;              // (N−L) × (T, H)
    readonly float[] _normed;                // (R, H) final-normed response rows
    readonly float[] _logSumExp;             // (R)
    readonly int _kept;                      // upper blocks whose activations the forward kept (the lowest)
    bool _done;

    internal SteeredPass(SteeredLogProb owner, SequenceBatch batch, float multiplier, float[][] inputs,
        float[] normed, float[] logSumExp, double[] logProbs, int kept)
    {
        _kept = kept;
        _owner = owner;
        _batch = batch;
        _multiplier = multiplier;
        _inputs = inputs;
        _normed = normed;
        _logSumExp = logSumExp;
        LogProbs = logProbs;
    }

    /// <summary>(Count) Σ over each sequence's response tokens of log p(token | preceding tokens), steered.</summary>
    public double[] LogProbs { get; }

    /// <summary>
    /// gradVector += ∂f/∂v where dLogProb[s] = ∂f/∂LogProbs[s]. Can be called once per pass.
    /// </summary>
    public void Backward(ReadOnlySpan<double> dLogProb, Span<float> gradVector)
    {
        ModelConfig c = _owner.Config;
        int H = c.HiddenSize, T = _batch.Rows, R = _batch.ResponseRows.Length, L = _owner.Layer;
        if (dLogProb.Length != _batch.Count) throw new ArgumentException($"need one gradient per sequence ({_batch.Count})");
        if (_done) throw new InvalidOperationException("this pass has already been back-propagated");
        _done = true;

        var dRow = new float[R]; // (R) upstream gradient of each response token's log-prob
        for (int s = 0, i = 0; s < _batch.Count; s++)
            for (int t = 0; t < _batch.Sequences[s].ResponseLength; t++, i++) dRow[i] = (float)dLogProb[s];
        var dNormed = new float[R * H];
        Span<float> probabilities = _owner.ProbabilitiesOf(this, R * c.VocabSize);
        if (probabilities.IsEmpty)
            LmHeadLogSoftmax.Backward(_normed, _owner.Weights.LmHead, _batch.Targets, _logSumExp, dRow, dNormed, _owner.Products);
        else
            LmHeadLogSoftmax.BackwardFromProbabilities(probabilities, _owner.Weights.LmHead, _batch.Targets, dRow, dNormed, _owner.Products);

        var dCur = new float[T * H];  // (T, H) gradient at the output of the block being undone
        var dNext = new float[T * H];
        float[] last = _inputs[^1];
        var rowIn = new float[H];
        var rowGrad = new float[H];
        for (int i = 0; i < R; i++)
        {
            int r = _batch.ResponseRows[i];
            last.AsSpan(r * H, H).CopyTo(rowIn);
            RmsNormBackward.Backward(rowIn, _owner.Weights.FinalNorm, dNormed.AsSpan(i * H, H), rowGrad, 1, (float)c.RmsNormEps);
            rowGrad.CopyTo(dCur.AsSpan(r * H, H));
        }

        // The forward left the last block's activations in the workspace unless another pass ran since, and the
        // lowest _kept blocks' in their own; the others are recomputed from their saved inputs.
        bool recompute = !_owner.WorkspaceHoldsLastBlockOf(this);
        bool kept = _owner.KeptHolds(this);
        DecoderBlock.Workspace ws = _owner.Workspace(T, null);
        var scratch = new float[T * H];
        for (int k = _inputs.Length - 2; k >= 0; k--)
        {
            DecoderBlock block = _owner.Block(L + 1 + k);
            DecoderBlock.Workspace blockWs = ws;
            if (k < _kept && kept) blockWs = _owner.Kept(k, this);
            else if (recompute || k < _kept) block.Forward(_batch, _inputs[k], scratch, ws);
            recompute = true;
            block.Backward(_batch, _inputs[k], dCur, dNext, blockWs);
            (dCur, dNext) = (dNext, dCur);
        }

        var sum = new double[H];
        for (int r = 0; r < T; r++)
            for (int j = 0; j < H; j++) sum[j] += dCur[r * H + j];
        for (int j = 0; j < H; j++) gradVector[j] += (float)(_multiplier * sum[j]);
    }
}
