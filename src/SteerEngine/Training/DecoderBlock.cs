using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Training.Backward;

namespace SteerEngine.Training;

/// <summary>
/// One decoder block for training: the forward over whole sequences (the same ops, in the same order, as
/// Model.Transformer's f32 path), keeping the activations its backward needs, and the backward for the
/// block's input gradient only. The backward runs right after a forward recomputed from the block's saved
/// input, so at most one block's activations are alive at a time. Its weight products run on <paramref name="products"/>
/// (exact f32 or packed bf16); the norms, RoPE, attention and SwiGLU stay f32.
/// </summary>
public sealed class DecoderBlock(ModelConfig config, LayerWeights weights, Rope rope, RopeBackward ropeBackward, WeightProducts products)
{
    /// <summary>The activations of one block over T rows, reused from block to block.</summary>
    public sealed class Workspace
    {
        public Workspace(ModelConfig c, int rows)
        {
            Rows = rows;
            int H = c.HiddenSize, I = c.IntermediateSize;
            bool qkNorm = c.Arch == ModelArch.Qwen3;
            Xn1 = new float[rows * H];
            H1 = new float[rows * H];
            Xn2 = new float[rows * H];
            DXn = new float[rows * H];
            DH = new float[rows * H];
            QRaw = qkNorm ? new float[rows * c.QDim] : [];
            Q = new float[rows * c.QDim];
            Att = new float[rows * c.QDim];
            DAtt = new float[rows * c.QDim];
            KRaw = qkNorm ? new float[rows * c.KvDim] : [];
            K = new float[rows * c.KvDim];
            V = new float[rows * c.KvDim];
            Gate = new float[rows * I];
            Up = new float[rows * I];
            Act = new float[rows * I];
            Dq = new float[rows * c.QDim];
            Dk = new float[rows * c.KvDim];
            Dv = new float[rows * c.KvDim];
        }

        public int Rows { get; }
        public readonly float[] Xn1, H1, Xn2;           // (T, H) attention-normed input, after attention, MLP-normed
        public readonly float[] DXn, DH;                // (T, H) scratch: sublayer outputs, then gradients
        public readonly float[] QRaw, Q, Att, DAtt, Dq; // (T, nh*hd) queries before q_norm (Qwen3 only), rotated; attention output; gradients
        public readonly float[] KRaw, K, V, Dk, Dv;     // (T, nkv*hd) keys before k_norm (Qwen3 only), rotated keys, values; gradients
        public readonly float[] Gate, Up, Act;          // (T, I) gate and up projections, silu(gate)·up; in the backward, their gradients

        /// <summary>Bytes a workspace of <paramref name="rows"/> rows holds: the figure the trainer's memory statement adds up.</summary>
        public static long Bytes(ModelConfig c, long rows)
        {
            int qk = c.Arch == ModelArch.Qwen3 ? 1 : 0;
            long floatsPerRow = 5L * c.HiddenSize + (4L + qk) * c.QDim + (4L + qk) * c.KvDim + 3L * c.IntermediateSize;
            return 4 * rows * floatsPerRow;
        }
    }

    /// <summary>output = block(x). x, output: (T, H); may not alias.</summary>
    public void Forward(SequenceBatch batch, ReadOnlySpan<float> x, Span<float> output, Workspace ws)
    {
        ModelConfig c = config;
        LayerWeights w = weights;
        int T = batch.Rows;
        float eps = (float)c.RmsNormEps;

        // h = x + attention(attention_norm(x))
        RmsNorm.Forward(x, w.InputNorm, ws.Xn1, T, eps);
        float[] qOut = w.QNorm is null ? ws.Q : ws.QRaw, kOut = w.KNorm is null ? ws.K : ws.KRaw;
        products.Forward(ws.Xn1, w.Q, qOut, T);
        products.Forward(ws.Xn1, w.K, kOut, T);
        products.Forward(ws.Xn1, w.V, ws.V, T);
        if (w.QNorm is not null) RmsNorm.Forward(ws.QRaw, w.QNorm, ws.Q, T * c.NumHeads, eps);
        if (w.KNorm is not null) RmsNorm.Forward(ws.KRaw, w.KNorm, ws.K, T * c.NumKvHeads, eps);
        for (int r = 0; r < T; r++)
        {
            rope.Apply(ws.Q.AsSpan(r * c.QDim, c.QDim), c.NumHeads, batch.PositionOfRow[r]);
            rope.Apply(ws.K.AsSpan(r * c.KvDim, c.KvDim), c.NumKvHeads, batch.PositionOfRow[r]);
        }
        for (int s = 0; s < batch.Count; s++)
        {
            int r0 = batch.Offsets[s], n = batch.Length(s);
            Attention.Forward(ws.Q.AsSpan(r0 * c.QDim, n * c.QDim), ws.K.AsSpan(r0 * c.KvDim, n * c.KvDim),
                ws.V.AsSpan(r0 * c.KvDim, n * c.KvDim), ws.Att.AsSpan(r0 * c.QDim, n * c.QDim),
                n, 0, c.NumHeads, c.NumKvHeads, c.HeadDim);
        }
        products.Forward(ws.Att, w.O, ws.DXn, T);
        int TH = T * c.HiddenSize;
        for (int i = 0; i < TH; i++) ws.H1[i] = x[i] + ws.DXn[i];

        // out = h + feed_forward(ffn_norm(h))
        RmsNorm.Forward(ws.H1, w.PostAttentionNorm, ws.Xn2, T, eps);
        products.Forward(ws.Xn2, w.Gate, ws.Gate, T);
        products.Forward(ws.Xn2, w.Up, ws.Up, T);
        int TI = T * c.IntermediateSize;
        ws.Gate.AsSpan(0, TI).CopyTo(ws.Act);
        SwiGlu.Forward(ws.Act.AsSpan(0, TI), ws.Up.AsSpan(0, TI));
        products.Forward(ws.Act, w.Down, ws.DXn, T);
        for (int i = 0; i < TH; i++) output[i] = ws.H1[i] + ws.DXn[i];
    }

    /// <summary>
    /// dx = ∂(dOut · block(x))/∂x, from the activations the last <see cref="Forward"/> of x left in ws.
    /// dOut, dx: (T, H); may not alias.
    /// </summary>
    public void Backward(SequenceBatch batch, ReadOnlySpan<float> x, ReadOnlySpan<float> dOut, Span<float> dx, Workspace ws)
    {
        ModelConfig c = config;
        LayerWeights w = weights;
        int T = batch.Rows, TI = T * c.IntermediateSize, TH = T * c.HiddenSize;
        float eps = (float)c.RmsNormEps;

        // MLP: out = h + down(silu(gate)·up), gate/up = W·ffn_norm(h). Gate and Up become their own gradients.
        products.Backward(dOut, w.Down, ws.Act, T);
        SwiGluBackward.Backward(ws.Gate.AsSpan(0, TI), ws.Up.AsSpan(0, TI), ws.Act.AsSpan(0, TI), ws.Gate.AsSpan(0, TI), ws.Up.AsSpan(0, TI));
        products.Backward(ws.Gate, w.Gate, ws.DXn, T);
        products.Backward(ws.Up, w.Up, ws.DXn, T, accumulate: true);
        dOut[..TH].CopyTo(ws.DH);
        RmsNormBackward.Backward(ws.H1, w.PostAttentionNorm, ws.DXn, ws.DH, T, eps, accumulate: true);

        // Attention: h = x + o_proj(attend(rope(q), rope(k), v)).
        products.Backward(ws.DH, w.O, ws.DAtt, T);
        for (int s = 0; s < batch.Count; s++)
        {
            int r0 = batch.Offsets[s], n = batch.Length(s);
            AttentionBackward.Backward(ws.Q.AsSpan(r0 * c.QDim, n * c.QDim), ws.K.AsSpan(r0 * c.KvDim, n * c.KvDim),
                ws.V.AsSpan(r0 * c.KvDim, n * c.KvDim), ws.DAtt.AsSpan(r0 * c.QDim, n * c.QDim),
                ws.Dq.AsSpan(r0 * c.QDim, n * c.QDim), ws.Dk.AsSpan(r0 * c.KvDim, n * c.KvDim), ws.Dv.AsSpan(r0 * c.KvDim, n * c.KvDim),
                n, c.NumHeads, c.NumKvHeads, c.HeadDim);
        }
        for (int r = 0; r < T; r++)
        {
            ropeBackward.Apply(ws.Dq.AsSpan(r * c.QDim, c.QDim), c.NumHeads, batch.PositionOfRow[r]);
            ropeBackward.Apply(ws.Dk.AsSpan(r * c.KvDim, c.KvDim), c.NumKvHeads, batch.PositionOfRow[r]);
        }
        if (w.QNorm is not null) RmsNormBackward.Backward(ws.QRaw, w.QNorm, ws.Dq, ws.Dq, T * c.NumHeads, eps);
        if (w.KNorm is not null) RmsNormBackward.Backward(ws.KRaw, w.KNorm, ws.Dk, ws.Dk, T * c.NumKvHeads, eps);
        products.Backward(ws.Dq, w.Q, ws.DXn, T);
        products.Backward(ws.Dk, w.K, ws.DXn, T, accumulate: true);
        products.Backward(ws.Dv, w.V, ws.DXn, T, accumulate: true);
        ws.DH.AsSpan(0, TH).CopyTo(dx);
        RmsNormBackward.Backward(x, w.InputNorm, ws.DXn, dx, T, eps, accumulate: true);
    }
}
