namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// Causal grouped-query attention for one sequence's new tokens against its KV cache.
/// Query head h reads KV head h / (nh / nkv), as in HF's repeat_kv.
/// </summary>
public static class Attention
{
    /// <param name="q">(n, nh*hd) queries of the new tokens, already rotated</param>
    /// <param name="k">(len, nkv*hd) the sequence's cached keys, new tokens included</param>
    /// <param name="v">(len, nkv*hd) cached values</param>
    /// <param name="output">(n, nh*hd)</param>
    /// <param name="startPosition">position of the first new token; token i sees cache rows 0..startPosition+i</param>
    public static unsafe void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int n, int startPosition, int heads, int kvHeads, int headDim)
    {
        int qDim = heads * headDim, kvDim = kvHeads * headDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        fixed (float* qp = q, kp = k, vp = v, op = output)
        {
            float* qPtr = qp, kPtr = kp, vPtr = vp, oPtr = op;
            Parallel.For(0, n * heads, task =>
            {
                int i = task / heads, h = task % heads;
                int visible = startPosition + i + 1;
                float* qi = qPtr + (long)i * qDim + h * headDim;
                int kvOffset = (h / group) * headDim;
                var scores = new float[visible];
                float max = float.NegativeInfinity;
                for (int j = 0; j < visible; j++)
                {
                    float* kj = kPtr + (long)j * kvDim + kvOffset;
                    float s = 0;
                    for (int d = 0; d < headDim; d++) s += qi[d] * kj[d];
                    scores[j] = s * scale;
                    if (scores[j] > max) max = scores[j];
                }
                double sum = 0;
                for (int j = 0; j < visible; j++) { scores[j] = MathF.Exp(scores[j] - max); sum += scores[j]; }
                float inv = (float)(1.0 / sum);
                float* oi = oPtr + (long)i * qDim + h * headDim;
                for (int d = 0; d < headDim; d++) oi[d] = 0;
                for (int j = 0; j < visible; j++)
                {
                    float p = scores[j] * inv;
                    float* vj = vPtr + (long)j * kvDim + kvOffset;
                    for (int d = 0; d < headDim; d++) oi[d] += p * vj[d];
                }
            });
        }
    }
}
