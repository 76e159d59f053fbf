using SteerEngine.Generation;
using SteerEngine.Model;

namespace SteerEngine.Runtime;

/// <summary>
/// What the generator asks a backend for one sequence's last logit row instead of its logits: the
/// next token under <paramref name="Sampling"/> for the sequence's own <paramref name="Uniform"/>
/// draw, with the repetition penalty on the tokens of <see cref="History"/>, its log-prob when
/// <paramref name="Logprob"/>, and the <paramref name="TopLogprobs"/> most likely tokens. Log-probs
/// are of the model's distribution, before the penalty edits the logits.
/// </summary>
public sealed record TokenDraw(SamplingOptions Sampling, double Uniform, bool Logprob, int TopLogprobs)
{
    /// <summary>The tokens the repetition penalty applies to (prompt and generated), or null for none.</summary>
    public IReadOnlySet<int>? History { get; init; }

    /// <summary>The draw the host sampler makes from full logits (the reference every backend's draw must equal).</summary>
    /// <param name="row">(V) logits, left as they are (the penalty edits a copy)</param>
    public DrawnToken OnHost(Span<float> row)
    {
        TokenLogprob[]? top = TopLogprobs > 0 ? TokenLogprob.Top(row, TopLogprobs) : null;
        Span<float> penalized = History is not null && Sampling.RepetitionPenalty != 1f ? row.ToArray() : row;
        int token = Sampler.Sample(penalized, Sampling, Uniform, History);
        float? logprob = Logprob ? (float)Sampler.LogProb(row, token) : null;
        return new DrawnToken(token, logprob, top);
    }

    /// <summary>
    /// The host path of <see cref="IForwardModel.ForwardSample"/>: full logits into every buffer,
    /// then each drawn row sampled from its sequence's last logit row (rows in parallel).
    /// </summary>
    public static DrawnToken?[] ForwardThenSampleOnHost(IForwardModel model, IReadOnlyList<ForwardSequence> batch, float[][] logits,
        IReadOnlyList<TokenDraw?> draws, Capture.IHiddenStateSink? sink)
    {
        Check(batch, draws, model.Config.VocabSize);
        model.ForwardInto(batch, logits, sink);
        int V = model.Config.VocabSize;
        var drawn = new DrawnToken?[batch.Count];
        Parallel.For(0, batch.Count, s =>
        {
            if (draws[s] is { } d) drawn[s] = d.OnHost(logits[s].AsSpan((LogitBuffers.Rows(batch[s]) - 1) * V, V));
        });
        return drawn;
    }

    /// <summary>Throws unless there is one (possibly null) draw per sequence, each valid.</summary>
    public static void Check(IReadOnlyList<ForwardSequence> batch, IReadOnlyList<TokenDraw?> draws, int vocab)
    {
        if (draws.Count != batch.Count) throw new ArgumentException($"{draws.Count} token draws for a batch of {batch.Count} sequences", nameof(draws));
        for (int s = 0; s < draws.Count; s++)
            if (draws[s] is { } d)
            {
                d.Sampling.Validate();
                if (d.History?.FirstOrDefault(t => (uint)t >= (uint)vocab, -1) is >= 0 and var bad)
                    throw new ArgumentException($"sequence {s}: history token {bad} is outside the vocabulary (size {vocab})", nameof(draws));
                if (d.TopLogprobs is < 0 or > TokenLogprob.MaxTop) throw new ArgumentException($"sequence {s}: top log-probs {d.TopLogprobs} must be in 0..{TokenLogprob.MaxTop}", nameof(draws));
                if (!(d.Uniform >= 0 && d.Uniform < 1)) throw new ArgumentException($"sequence {s}: uniform draw {d.Uniform} must be in [0, 1)", nameof(draws));
            }
    }
}

/// <summary>A drawn token with the log-probs its <see cref="TokenDraw"/> asked for.</summary>
public readonly record struct DrawnToken(int Token, float? Logprob, TokenLogprob[]? TopLogprobs);
