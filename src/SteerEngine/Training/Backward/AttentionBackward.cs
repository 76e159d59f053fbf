using System.Numerics.Tensors;

namespace SteerEngine.Training.Backward;

/// <summary>
/// Input gradients of causal grouped-query attention over one whole sequence (Runtime.Cpu.Attention with
/// startPosition 0). The probabilities are recomputed, not stored: for query i of head h,
/// P_i = softmax(scale · q_i·k_j, j ≤ i), o_i = Σ_j P_ij v_j, so with dP_ij = do_i·v_j and
/// ds_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij'):
/// dq_i = scale Σ_j ds_ij k_j,  dk_j += scale ds_ij q_i,  dv_j += P_ij do_i.
/// Query head h reads KV head h / (nh / nkv), so each KV head's gradient sums over its group.
/// </summary>
public static class AttentionBackward
{
    /// <param name="q">(n, nh*hd) rotated queries</param><param name="k">(n, nkv*hd) rotated keys</param>
    /// <param name="v">(n, nkv*hd)</param><param name="dOut">(n, nh*hd) gradient of the attention output</param>
    /// <param name="dq">(n, nh*hd)</param><param name="dk">(n, nkv*hd)</param><param name="dv">(n, nkv*hd); all three overwritten</param>
    public static unsafe void Backward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dOut,
        Span<float> dq, Span<float> dk, Span<float> dv, int n, int heads, int kvHeads, int headDim)
    {
        int qDim = heads * headDim, kvDim = kvHeads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        dq[..(n * qDim)].Clear();
        dk[..(n * kvDim)].Clear();
        dv[..(n * kvDim)].Clear();
        fixed (float* qp = q, kp = k, vp = v, dop = dOut, dqp = dq, dkp = dk, dvp = dv)
        {
            float* qPtr = qp, kPtr = kp, vPtr = vp, doPtr = dop, dqPtr = dqp, dkPtr = dkp, dvPtr = dvp;
            // One task per KV head: it alone writes that head's dk and dv columns.
            Parallel.For(0, kvHeads, kvh =>
            {
                var p = new float[n];  // (i+1) probabilities of one query row
                var ds = new float[n]; // (i+1) score gradients
                int kvOffset = kvh * headDim;
                for (int h = kvh * group; h < (kvh + 1) * group; h++)
                    for (int i = 0; i < n; i++)
                    {
                        float* qi = qPtr + (long)i * qDim + h * headDim;
                        var doi = new ReadOnlySpan<float>(doPtr + (long)i * qDim + h * headDim, headDim);
                        int visible = i + 1;
                        float max = float.NegativeInfinity;
                        for (int j = 0; j < visible; j++)
                        {
                            float* kj = kPtr + (long)j * kvDim + kvOffset;
                            float s = 0;
                            for (int d = 0; d < headDim; d++) s += qi[d] * kj[d];
                            p[j] = s * scale;
                            if (p[j] > max) max = p[j];
                        }
                        double sum = 0;
                        for (int j = 0; j < visible; j++) { p[j] = MathF.Exp(p[j] - max); sum += p[j]; }
                        float inv = (float)(1.0 / sum);
                        double pdp = 0;
                        for (int j = 0; j < visible; j++)
                        {
                            p[j] *= inv;
                            ds[j] = TensorPrimitives.Dot(doi, new ReadOnlySpan<float>(vPtr + (long)j * kvDim + kvOffset, headDim));
                            pdp += (double)p[j] * ds[j];
                        }
                        var dqi = new Span<float>(dqPtr + (long)i * qDim + h * headDim, headDim);
                        var qiSpan = new ReadOnlySpan<float>(qi, headDim);
                        for (int j = 0; j < visible; j++)
                        {
                            float g = p[j] * (ds[j] - (float)pdp) * scale;
                            var dvj = new Span<float>(dvPtr + (long)j * kvDim + kvOffset, headDim);
                            TensorPrimitives.MultiplyAdd(doi, p[j], dvj, dvj);
                            if (g == 0) continue;
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(kPtr + (long)j * kvDim + kvOffset, headDim), g, dqi, dqi);
                            var dkj = new Span<float>(dkPtr + (long)j * kvDim + kvOffset, headDim);
                            TensorPrimitives.MultiplyAdd(qiSpan, g, dkj, dkj);
                        }
                    }
            });
        }
    }
}
