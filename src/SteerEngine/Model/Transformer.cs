using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Model;

/// <summary>One sequence's part of a forward batch: its new tokens, its cache and its steering.</summary>
public sealed class ForwardSequence(KvCache cache, int[] tokens, SequenceSteering? steering = null, bool allLogits = false)
{
    public KvCache Cache { get; } = cache;
    public int[] Tokens { get; } = tokens;
    public SequenceSteering? Steering { get; } = steering;
    /// <summary>Logits for every new token (scoring, tests) instead of only the last (generation).</summary>
    public bool AllLogits { get; } = allLogits;
}

/// <summary>
/// The Llama / Qwen3 decoder on the exact f32 CPU path: embeddings → blocks → final norm → logits,
/// for a batch of sequences of different lengths, each continuing from its own KV cache.
/// </summary>
public sealed class Transformer : IDisposable
{
    readonly Rope _rope;

    public Transformer(ModelConfig config, ModelWeights weights)
    {
        Config = config;
        Weights = weights;
        _rope = new Rope(config);
    }

    public ModelConfig Config { get; }
    public ModelWeights Weights { get; }

    public static Transformer Load(string modelDir)
    {
        ModelConfig config = ModelConfig.Load(Path.Combine(modelDir, "config.json"));
        TensorStore store = TensorStore.Open(modelDir);
        try
        {
            return new Transformer(config, ModelWeights.Load(store, config));
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
        ModelConfig c = Config;
        int H = c.HiddenSize, T = batch.Sum(s => s.Tokens.Length);

        // Row r of every buffer is one token; rows are grouped by sequence in batch order.
        var sequenceOfRow = new int[T];
        var positionOfRow = new int[T];
        var steeringOfRow = new SequenceSteering?[T];
        for (int s = 0, r = 0; s < batch.Count; s++)
        {
            ForwardSequence seq = batch[s];
            if (seq.Tokens.Length == 0) throw new ArgumentException($"sequence {s} of the batch has no new tokens");
            seq.Steering?.Validate(c.NumLayers, H);
            seq.Cache.Reserve(seq.Cache.Length + seq.Tokens.Length);
            for (int i = 0; i < seq.Tokens.Length; i++, r++)
            {
                sequenceOfRow[r] = s;
                positionOfRow[r] = seq.Cache.Length + i;
                steeringOfRow[r] = seq.Steering;
            }
        }
        var layout = new BatchLayout(sequenceOfRow, positionOfRow);

        var x = new float[T * H];                         // (T, H) residual stream
        var xn = new float[T * H];                        // (T, H) normed input of a sublayer
        var q = new float[T * c.QDim];                    // (T, nh*hd)
        var k = new float[T * c.KvDim];                   // (T, nkv*hd)
        var v = new float[T * c.KvDim];                   // (T, nkv*hd)
        var att = new float[T * c.QDim];                  // (T, nh*hd) attention output before O
        var delta = new float[T * H];                     // (T, H) sublayer output
        var gate = new float[T * c.IntermediateSize];     // (T, I)
        var up = new float[T * c.IntermediateSize];       // (T, I)

        Embed(batch, x);
        sink?.Record(0, x, layout);

        for (int l = 0; l < c.NumLayers; l++)
        {
            LayerWeights w = Weights.Layers[l];

            // h = x + attention(attention_norm(x))
            RmsNorm.Forward(x, w.InputNorm, xn, T, (float)c.RmsNormEps);
            MatMul.Forward(xn, w.Q, q, T);
            MatMul.Forward(xn, w.K, k, T);
            MatMul.Forward(xn, w.V, v, T);
            if (w.QNorm is not null) RmsNorm.Forward(q, w.QNorm, q, T * c.NumHeads, (float)c.RmsNormEps);
            if (w.KNorm is not null) RmsNorm.Forward(k, w.KNorm, k, T * c.NumKvHeads, (float)c.RmsNormEps);
            for (int r = 0; r < T; r++)
            {
                _rope.Apply(q.AsSpan(r * c.QDim, c.QDim), c.NumHeads, positionOfRow[r]);
                _rope.Apply(k.AsSpan(r * c.KvDim, c.KvDim), c.NumKvHeads, positionOfRow[r]);
            }
            Attend(batch, l, q, k, v, att);
            MatMul.Forward(att, w.O, delta, T);
            for (int i = 0; i < x.Length; i++) x[i] += delta[i];

            // out = h + feed_forward(ffn_norm(h)), then the steering add at this block's output
            RmsNorm.Forward(x, w.PostAttentionNorm, xn, T, (float)c.RmsNormEps);
            MatMul.Forward(xn, w.Gate, gate, T);
            MatMul.Forward(xn, w.Up, up, T);
            SwiGlu.Forward(gate, up);
            MatMul.Forward(gate, w.Down, delta, T);
            ResidualAdd.ForwardSteered(x, delta, H, l, steeringOfRow, positionOfRow);

            if (l < c.NumLayers - 1) sink?.Record(l + 1, x, layout);
        }

        RmsNorm.Forward(x, Weights.FinalNorm, x, T, (float)c.RmsNormEps);
        sink?.Record(c.NumLayers, x, layout);

        foreach (ForwardSequence seq in batch) seq.Cache.Commit(seq.Tokens.Length);
        return Logits(batch, x);
    }

    void Embed(IReadOnlyList<ForwardSequence> batch, Span<float> x)
    {
        int H = Config.HiddenSize, r = 0;
        foreach (ForwardSequence seq in batch)
            foreach (int token in seq.Tokens)
            {
                if ((uint)token >= (uint)Config.VocabSize)
                    throw new ArgumentException($"token id {token} is outside the vocabulary (size {Config.VocabSize})");
                Weights.Embedding.ReadRow(token, x.Slice(r++ * H, H));
            }
    }

    /// <summary>Writes each sequence's new K/V rows into its cache, then attends over the cache.</summary>
    void Attend(IReadOnlyList<ForwardSequence> batch, int layer, float[] q, float[] k, float[] v, float[] att)
    {
        ModelConfig c = Config;
        int r = 0;
        foreach (ForwardSequence seq in batch)
        {
            int n = seq.Tokens.Length, start = seq.Cache.Length, len = start + n;
            Span<float> keys = seq.Cache.Keys(layer, len);
            Span<float> values = seq.Cache.Values(layer, len);
            k.AsSpan(r * c.KvDim, n * c.KvDim).CopyTo(keys[(start * c.KvDim)..]);
            v.AsSpan(r * c.KvDim, n * c.KvDim).CopyTo(values[(start * c.KvDim)..]);
            Attention.Forward(q.AsSpan(r * c.QDim, n * c.QDim), keys, values, att.AsSpan(r * c.QDim, n * c.QDim),
                n, start, c.NumHeads, c.NumKvHeads, c.HeadDim);
            r += n;
        }
    }

    float[][] Logits(IReadOnlyList<ForwardSequence> batch, float[] x)
    {
        int H = Config.HiddenSize, V = Config.VocabSize;
        var result = new float[batch.Count][];
        int r = 0;
        for (int s = 0; s < batch.Count; s++)
        {
            ForwardSequence seq = batch[s];
            int n = seq.Tokens.Length;
            int first = seq.AllLogits ? r : r + n - 1, rows = seq.AllLogits ? n : 1;
            result[s] = new float[rows * V];
            MatMul.Forward(x.AsSpan(first * H, rows * H), Weights.LmHead, result[s], rows);
            r += n;
        }
        return result;
    }

    public void Dispose() => Weights.Dispose();
}
