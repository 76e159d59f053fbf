using System.Buffers;
using System.Numerics.Tensors;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Training.Backward;

/// <summary>
/// The log-prob of a target token through the LM head and log-softmax, forward and input gradient:
/// z = W·x (W the (V, H) head), lp = z_y − logsumexp(z), so dlp/dx = W_y − Σ_v softmax(z)_v W_v.
/// Only the rows that score a token go through the head, and the (rows, V) logits are never kept:
/// the forward keeps logsumexp per row, the backward recomputes each logit as it streams W once.
/// </summary>
public static class LmHeadLogSoftmax
{
    const int RowsPerChunk = 64, RowsPerBackwardChunk = 64, TasksPerThread = 4;

    /// <summary>Bytes of scratch: the forward's logits chunk, or the backward's per-task accumulators, whichever is larger.</summary>
    public static long ScratchBytes(int vocab, int hidden, int threads) =>
        Math.Max(4L * RowsPerChunk * vocab, 4L * TasksPerThread * threads * (RowsPerBackwardChunk + 1) * hidden);

    /// <param name="x">(rows, H) final-normed hidden states</param><param name="targets">(rows) token ids</param>
    /// <param name="logProb">(rows) log p(target)</param><param name="logSumExp">(rows) saved for the backward</param>
    /// <param name="products">the head's product; the exact f32 one when null</param>
    /// <param name="probabilities">(rows, V) softmax(z), kept for <see cref="BackwardFromProbabilities"/>; empty: not kept</param>
    public static void Forward(ReadOnlySpan<float> x, WeightMatrix head, ReadOnlySpan<int> targets,
        Span<double> logProb, Span<float> logSumExp, WeightProducts? products = null, Span<float> probabilities = default)
    {
        products ??= WeightProducts.Exact;
        int H = head.Cols, V = head.Rows, rows = targets.Length;
        float[] logits = ArrayPool<float>.Shared.Rent(Math.Min(rows, RowsPerChunk) * V); // (chunk, V)
        float[] softmax = probabilities.IsEmpty && !products.IsExact ? ArrayPool<float>.Shared.Rent(V) : []; // (V) when not kept
        for (int r0 = 0; r0 < rows; r0 += RowsPerChunk)
        {
            int n = Math.Min(RowsPerChunk, rows - r0);
            products.Forward(x.Slice(r0 * H, n * H), head, logits, n);
            for (int i = 0; i < n; i++)
            {
                Span<float> z = logits.AsSpan(i * V, V);
                double lse;
                if (products.IsExact)
                {
                    float max = TensorPrimitives.Max(z);
                    double sum = 0;
                    for (int t = 0; t < V; t++) sum += Math.Exp(z[t] - max);
                    lse = max + Math.Log(sum);
                }
                else
                {
                    Span<float> p = probabilities.IsEmpty ? softmax.AsSpan(0, V) : probabilities.Slice((r0 + i) * V, V);
                    var (max, sum) = Softmax(z, p, normalize: !probabilities.IsEmpty);
                    lse = max + Math.Log(sum);
                }
                logSumExp[r0 + i] = (float)lse;
                logProb[r0 + i] = z[targets[r0 + i]] - lse;
            }
        }
        ArrayPool<float>.Shared.Return(logits);
        if (softmax.Length > 0) ArrayPool<float>.Shared.Return(softmax);
    }

    /// <summary>
    /// p = exp(z − max(z)), then, when <paramref name="normalize"/>, p /= Σp: the packed path's softmax in f32, one exp
    /// pass. The forward (keeping p) and the backward (recomputing it) run exactly these ops, so both give the same bits.
    /// z, p: (V); may alias. Returns max(z) and Σ exp(z − max) (log-sum-exp = max + log Σ).
    /// </summary>
    static (float Max, double Sum) Softmax(ReadOnlySpan<float> z, Span<float> p, bool normalize)
    {
        float max = TensorPrimitives.Max(z);
        TensorPrimitives.Subtract(z, max, p);
        TensorPrimitives.Exp(p, p);
        double sum = TensorPrimitives.Sum(p);
        if (normalize) TensorPrimitives.Multiply(p, (float)(1 / sum), p);
        return (max, sum);
    }

    /// <param name="x">(rows, H) as in the forward</param><param name="logSumExp">(rows) from the forward</param>
    /// <param name="dLogProb">(rows) upstream gradient of each row's log-prob</param>
    /// <param name="dx">(rows, H) overwritten</param>
    /// <param name="products">the head's products; the exact f32 path streams W row by row instead</param>
    public static void Backward(ReadOnlySpan<float> x, WeightMatrix head, ReadOnlySpan<int> targets,
        ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dLogProb, Span<float> dx, WeightProducts? products = null)
    {
        int H = head.Cols, rows = targets.Length;
        if (products is { IsExact: false })
        {
            BackwardByProducts(x, head, targets, dLogProb, dx, products);
            return;
        }
        // Chunks of rows bound the per-task accumulators; each chunk streams W once.
        for (int r0 = 0; r0 < rows; r0 += RowsPerBackwardChunk)
        {
            int n = Math.Min(RowsPerBackwardChunk, rows - r0);
            BackwardChunk(x.Slice(r0 * H, n * H), head, targets.Slice(r0, n), logSumExp.Slice(r0, n), dLogProb.Slice(r0, n), dx.Slice(r0 * H, n * H));
        }
    }

    static unsafe void BackwardChunk(ReadOnlySpan<float> x, WeightMatrix head, ReadOnlySpan<int> targets,
        ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dLogProb, Span<float> dx)
    {
        int H = head.Cols, V = head.Rows, rows = targets.Length;
        dx[..(rows * H)].Clear();
        // W_y terms directly; the softmax terms stream W in chunks, each task summing into its own (rows, H).
        var row = new float[H];
        for (int r = 0; r < rows; r++)
        {
            head.ReadRow(targets[r], row);
            TensorPrimitives.MultiplyAdd(row, dLogProb[r], dx.Slice(r * H, H), dx.Slice(r * H, H));
        }
        int tasks = Math.Max(1, Environment.ProcessorCount) * TasksPerThread, perTask = (V + tasks - 1) / tasks;
        var partials = new float[tasks][];
        fixed (float* xp = x, lp = logSumExp, gp = dLogProb)
        {
            float* xPtr = xp, lsePtr = lp, gPtr = gp;
            Parallel.For(0, tasks, task =>
            {
                var acc = new float[rows * H]; // (rows, H)
                var w = new float[H];
                for (int t = task * perTask, end = Math.Min(V, t + perTask); t < end; t++)
                {
                    head.ReadRow(t, w);
                    for (int r = 0; r < rows; r++)
                    {
                        if (gPtr[r] == 0) continue;
                        float z = TensorPrimitives.Dot(new ReadOnlySpan<float>(xPtr + (long)r * H, H), w);
                        float c = -gPtr[r] * MathF.Exp(z - lsePtr[r]);
                        TensorPrimitives.MultiplyAdd(w, c, acc.AsSpan(r * H, H), acc.AsSpan(r * H, H));
                    }
                }
                partials[task] = acc;
            });
        }
        foreach (float[] acc in partials) TensorPrimitives.Add(dx[..(rows * H)], acc, dx[..(rows * H)]);
    }

    /// <summary>
    /// The backward from the probabilities the forward kept: dz = dlp · (onehot(y) − p), in place, then one product,
    /// dx = dz · W (on the transposed head for packed products). probabilities: (rows, V), overwritten.
    /// </summary>
    public static void BackwardFromProbabilities(Span<float> probabilities, WeightMatrix head, ReadOnlySpan<int> targets,
        ReadOnlySpan<float> dLogProb, Span<float> dx, WeightProducts products)
    {
        int V = head.Rows, rows = targets.Length;
        for (int r = 0; r < rows; r++)
        {
            Span<float> dz = probabilities.Slice(r * V, V);
            TensorPrimitives.Multiply(dz, -dLogProb[r], dz);
            dz[targets[r]] += dLogProb[r];
        }
        products.Backward(probabilities[..(rows * V)], head, dx, rows);
    }

    /// <summary>
    /// The backward as two products per chunk of rows: the logits again, z = x · Wᵀ (chunk, V), then
    /// dz = dlp · (onehot(y) − softmax(z)) in place and dx = dz · W on the transposed head. The softmax is
    /// recomputed exactly as the forward computes the one it keeps.
    /// </summary>
    static void BackwardByProducts(ReadOnlySpan<float> x, WeightMatrix head, ReadOnlySpan<int> targets,
        ReadOnlySpan<float> dLogProb, Span<float> dx, WeightProducts products)
    {
        int H = head.Cols, V = head.Rows, rows = targets.Length;
        float[] logits = ArrayPool<float>.Shared.Rent(Math.Min(rows, RowsPerChunk) * V); // (chunk, V), then dz
        for (int r0 = 0; r0 < rows; r0 += RowsPerChunk)
        {
            int n = Math.Min(RowsPerChunk, rows - r0);
            products.Forward(x.Slice(r0 * H, n * H), head, logits, n);
            for (int i = 0; i < n; i++)
            {
                Span<float> z = logits.AsSpan(i * V, V);
                float g = dLogProb[r0 + i];
                Softmax(z, z, normalize: true);
                TensorPrimitives.Multiply(z, -g, z);
                z[targets[r0 + i]] += g;
            }
            products.Backward(logits.AsSpan(0, n * V), head, dx.Slice(r0 * H, n * H), n);
        }
        ArrayPool<float>.Shared.Return(logits);
    }
}
