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
    const int RowsPerChunk = 32, RowsPerBackwardChunk = 64, TasksPerThread = 4;

    /// <summary>Bytes of scratch: the forward's logits chunk, or the backward's per-task accumulators, whichever is larger.</summary>
    public static long ScratchBytes(int vocab, int hidden, int threads) =>
        Math.Max(4L * RowsPerChunk * vocab, 4L * TasksPerThread * threads * (RowsPerBackwardChunk + 1) * hidden);

    /// <param name="x">(rows, H) final-normed hidden states</param><param name="targets">(rows) token ids</param>
    /// <param name="logProb">(rows) log p(target)</param><param name="logSumExp">(rows) saved for the backward</param>
    public static void Forward(ReadOnlySpan<float> x, WeightMatrix head, ReadOnlySpan<int> targets,
        Span<double> logProb, Span<float> logSumExp)
    {
        int H = head.Cols, V = head.Rows, rows = targets.Length;
        float[] logits = ArrayPool<float>.Shared.Rent(Math.Min(rows, RowsPerChunk) * V); // (chunk, V)
        for (int r0 = 0; r0 < rows; r0 += RowsPerChunk)
        {
            int n = Math.Min(RowsPerChunk, rows - r0);
            MatMul.Forward(x.Slice(r0 * H, n * H), head, logits, n);
            for (int i = 0; i < n; i++)
            {
                ReadOnlySpan<float> z = logits.AsSpan(i * V, V);
                float max = TensorPrimitives.Max(z);
                double sum = 0;
                for (int t = 0; t < V; t++) sum += Math.Exp(z[t] - max);
                double lse = max + Math.Log(sum);
                logSumExp[r0 + i] = (float)lse;
                logProb[r0 + i] = z[targets[r0 + i]] - lse;
            }
        }
        ArrayPool<float>.Shared.Return(logits);
    }

    /// <param name="x">(rows, H) as in the forward</param><param name="logSumExp">(rows) from the forward</param>
    /// <param name="dLogProb">(rows) upstream gradient of each row's log-prob</param>
    /// <param name="dx">(rows, H) overwritten</param>
    public static void Backward(ReadOnlySpan<float> x, WeightMatrix head, ReadOnlySpan<int> targets,
        ReadOnlySpan<float> logSumExp, ReadOnlySpan<float> dLogProb, Span<float> dx)
    {
        int H = head.Cols, rows = targets.Length;
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
}
