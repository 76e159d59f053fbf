using SteerEngine.Generation;

namespace SteerEngine.Runtime.Cuda;

// Sampling on the device: the launches for the drawn rows and the few bytes that come back.
public sealed partial class CudaTransformer
{
    /// <summary>One field of the plan's draws, at least one element (an empty upload has no address).</summary>
    static T[] DrawField<T>(Plan p, Func<TokenDraw, T> field) where T : unmanaged =>
        p.Draws.Length == 0 ? new T[1] : p.Draws.Select(field).ToArray();

    /// <summary>
    /// The draws' settings as the step uploads them, in <see cref="DrawInputs"/> order: (D) each,
    /// then the penalised tokens as row ranges (D+1) into one list (each draw's history, distinct).
    /// </summary>
    static Array[] DrawArrays(Plan p)
    {
        var historyStart = new int[p.Draws.Length + 1];
        var history = new List<int>();
        for (int i = 0; i < p.Draws.Length; i++)
        {
            TokenDraw t = p.Draws[i];
            if (t.History is not null && t.Sampling.RepetitionPenalty != 1f) history.AddRange(t.History);
            historyStart[i + 1] = history.Count;
        }
        return [DrawField(p, d => d.Sampling.Temperature), DrawField(p, d => d.Sampling.TopK), DrawField(p, d => d.Sampling.TopP),
            DrawField(p, d => d.Sampling.MinP), DrawField(p, d => d.Uniform), DrawField(p, d => d.TopLogprobs),
            DrawField(p, d => d.Sampling.RepetitionPenalty), historyStart, history.Count > 0 ? history.ToArray() : new int[1]];
    }

    /// <summary>
    /// Draws [first, first + n), whose whole-vocabulary logits are rows [0, n) of
    /// <paramref name="logits"/> (on rank 0): the token (from a penalised copy when a draw has a
    /// repetition penalty), then the log-partition and the token's log-prob, then the top
    /// log-probs, as asked — the log-probs of the unpenalised logits, as the host sampler gives them.
    /// </summary>
    static void SampleRows(CudaDevice d, Workspace ws, Plan p, DevicePtr logits, int vocab, int first, int n, DrawInputs at, DrawOutputs to)
    {
        var grid = new Dim3((uint)n);
        var block = new Dim3(256);
        var draws = p.Draws.AsSpan(first, n);
        bool logprobs = false, top = false, penalty = false;
        foreach (TokenDraw t in draws)
        {
            logprobs |= t.Logprob || t.TopLogprobs > 0;
            top |= t.TopLogprobs > 0;
            penalty |= t.History is not null && t.Sampling.RepetitionPenalty != 1f;
        }
        DevicePtr sampled = logits;
        if (penalty)
        {
            sampled = ws.Get("penalized_logits", (long)n * vocab * 4); // (n, V)
            d.CopyOnDevice(sampled, logits, (long)n * vocab * 4);
            d.Launch("repetition_penalty_rows", grid, block, sampled, vocab, at.Penalty + first * 4L, at.HistoryStart + first * 4L, at.History);
        }
        d.Launch("sample_rows", grid, block, sampled, vocab, at.Temperature + first * 4L, at.TopK + first * 4L, at.TopP + first * 4L,
            at.MinP + first * 4L, at.Uniform + first * 8L, to.Tokens + first * 4L, DevicePtr.Null);
        if (logprobs)
            d.Launch("log_softmax_rows", grid, block, logits, vocab, to.Tokens + first * 4L, to.LogPartition + first * 4L,
                to.Logprob + first * 4L, DevicePtr.Null);
        if (top)
            d.Launch("top_logprobs_rows", grid, block, logits, vocab, at.TopCount + first * 4L, TokenLogprob.MaxTop,
                to.LogPartition + first * 4L, to.TopIds + first * 4L * TokenLogprob.MaxTop, to.TopLogprob + first * 4L * TokenLogprob.MaxTop);
    }

    /// <summary>
    /// Rows [0, n) of the all-gathered (ranks, rows, slice) logits as whole (n, V) rows on this
    /// device, for the sampler; with one rank, the logits themselves.
    /// </summary>
    DevicePtr WholeRows(CudaDevice d, Workspace ws, DevicePtr all, int rows, int slice, int n)
    {
        if (_ranks.Length == 1) return all;
        int V = Config.VocabSize;
        DevicePtr whole = ws.Get("drawn_logits", (long)n * V * 4); // (n, V)
        d.Launch("join_vocab_slices", new Dim3((uint)n), new Dim3(256), all, rows, slice, V, whole);
        return whole;
    }

    /// <summary>The draws' settings on the device, (D) each; the penalised tokens: HistoryStart (D+1) into History.</summary>
    readonly record struct DrawInputs(DevicePtr Temperature, DevicePtr TopK, DevicePtr TopP, DevicePtr MinP, DevicePtr Uniform, DevicePtr TopCount,
        DevicePtr Penalty, DevicePtr HistoryStart, DevicePtr History)
    {
        /// <summary>The uploaded <see cref="DrawArrays"/>, in order.</summary>
        public static DrawInputs At(ReadOnlySpan<DevicePtr> p) => new(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]);
    }

    /// <summary>What the device draws: (D) tokens, log-partitions, log-probs; (D, MaxTop) top ids and log-probs.</summary>
    readonly record struct DrawOutputs(DevicePtr Tokens, DevicePtr LogPartition, DevicePtr Logprob, DevicePtr TopIds, DevicePtr TopLogprob)
    {
        public static DrawOutputs In(Workspace ws, int draws) => new(ws.Get("draw_tokens", draws * 4L), ws.Get("draw_lse", draws * 4L),
            ws.Get("draw_logprob", draws * 4L), ws.Get("draw_top_ids", draws * 4L * TokenLogprob.MaxTop),
            ws.Get("draw_top_logprob", draws * 4L * TokenLogprob.MaxTop));

        /// <summary>The only results that leave the device: ids and log-probs, a few bytes per draw.</summary>
        public DrawnToken[] Download(CudaDevice d, TokenDraw[] draws, int vocab)
        {
            int D = draws.Length, K = TokenLogprob.MaxTop;
            var tokens = new int[D];
            var logprob = new float[D];
            var topIds = new int[D * K];
            var topLogprob = new float[D * K];
            d.Download<int>(Tokens, tokens);
            bool anyLogprob = draws.Any(t => t.Logprob || t.TopLogprobs > 0), anyTop = draws.Any(t => t.TopLogprobs > 0);
            if (anyLogprob) d.Download<float>(Logprob, logprob);
            if (anyTop)
            {
                d.Download<int>(TopIds, topIds);
                d.Download<float>(TopLogprob, topLogprob);
            }
            var drawn = new DrawnToken[D];
            for (int i = 0; i < D; i++)
            {
                TokenDraw t = draws[i];
                TokenLogprob[]? top = null;
                if (t.TopLogprobs > 0)
                {
                    top = new TokenLogprob[Math.Min(t.TopLogprobs, vocab)];
                    for (int j = 0; j < top.Length; j++) top[j] = new TokenLogprob(topIds[i * K + j], topLogprob[i * K + j]);
                }
                drawn[i] = new DrawnToken(tokens[i], t.Logprob ? logprob[i] : null, top);
            }
            return drawn;
        }
    }
}
