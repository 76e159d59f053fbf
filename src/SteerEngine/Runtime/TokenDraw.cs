using SteerEngine.Generation;
using SteerEngine.Model;

namespace SteerEngine.Runtime;

/// <summary>
/// What the generator asks a backend for one sequence's last logit row instead of its logits: the
/// next token under <paramref name="Sampling"/> (without repetition penalty, which needs the
/// history) for the sequence's own <paramref name="Uniform"/> draw, its log-prob when
/// <paramref name="Logprob"/>, and the <paramref name="TopLogprobs"/> most likely tokens.
/// </summary>
public sealed record TokenDraw(SamplingOptions Sampling, double Uniform, bool Logprob, int TopLogprobs)
{
    /// <summary>The draw the host sampler makes from full logits (the reference every backend's draw must equal).</summary>
    /// <param name="row">(V) logits, left as they are (there is no repetition penalty to apply)</param>
    public DrawnToken OnHost(Span<float> row)
    {
        if (Sampling.RepetitionPenalty != 1f) throw new ArgumentException("a token draw has no history for the repetition penalty; sample such rows from full logits");
        TokenLogprob[]? top = TopLogprobs > 0 ? TokenLogprob.Top(row, TopLogprobs) : null;
        int token = Sampler.Sample(row, Sampling, Uniform);
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
        Check(batch, draws);
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
    public static void Check(IReadOnlyList<ForwardSequence> batch, IReadOnlyList<TokenDraw?> draws)
    {
        if (draws.Count != batch.Count) throw new ArgumentException($"{draws.Count} token draws for a batch of {batch.Count} sequences", nameof(draws));
        for (int s = 0; s < draws.Count; s++)
            if (draws[s] is { } d)
            {
                d.Sampling.Validate();
                if (d.Sampling.RepetitionPenalty != 1f) throw new ArgumentException($"sequence {s}: a token draw cannot apply a repetition penalty (sample from full logits)", nameof(draws));
                if (d.TopLogprobs is < 0 or > TokenLogprob.MaxTop) throw new ArgumentException($"sequence {s}: top log-probs {d.TopLogprobs} must be in 0..{TokenLogprob.MaxTop}", nameof(draws));
                if (!(d.Uniform >= 0 && d.Uniform < 1)) throw new ArgumentException($"sequence {s}: uniform draw {d.Uniform} must be in [0, 1)", nameof(draws));
            }
    }
}

/// <summary>A drawn token with the log-probs its <see cref="TokenDraw"/> asked for.</summary>
public readonly record struct DrawnToken(int Token, float? Logprob, TokenLogprob[]? TopLogprobs);
