using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;

namespace SteerEngine.Runtime;

/// <summary>
/// What a backend offers the generator, scorer and capture code: the forward pass of
/// <see cref="Transformer"/> (same batch contract, same logits layout, same hidden-state entries).
/// </summary>
public interface IForwardModel : IDisposable
{
    ModelConfig Config { get; }
    KvCache NewCache(int capacity = 64);
    float[][] Forward(IReadOnlyList<ForwardSequence> batch, IHiddenStateSink? sink = null);

    /// <summary>
    /// <see cref="Forward"/> with each sequence's logits written into the caller's
    /// <paramref name="logits"/>[s] (rows × V, as Forward would return them) instead of new arrays:
    /// a decode loop that keeps its buffers allocates no logits per step. The buffers are checked
    /// before any cache changes. This default copies from <see cref="Forward"/>.
    /// </summary>
    void ForwardInto(IReadOnlyList<ForwardSequence> batch, float[][] logits, IHiddenStateSink? sink = null)
    {
        LogitBuffers.Check(batch, logits, Config.VocabSize);
        float[][] result = Forward(batch, sink);
        for (int s = 0; s < result.Length; s++) result[s].CopyTo(logits[s], 0);
    }

    /// <summary>
    /// <see cref="ForwardInto"/>, and for each sequence with a draw (<paramref name="draws"/>[s] not
    /// null) its next token from its last logit row, as <see cref="TokenDraw.OnHost"/> picks it. A
    /// backend may sample such rows where the logits are (the device) and leave their buffers
    /// unwritten; sequences without a draw always get full logits. This default writes all logits
    /// and samples on the host.
    /// </summary>
    /// <returns>per sequence, its drawn token, or null where it had no draw</returns>
    DrawnToken?[] ForwardSample(IReadOnlyList<ForwardSequence> batch, float[][] logits, IReadOnlyList<TokenDraw?> draws, IHiddenStateSink? sink = null)
        => TokenDraw.ForwardThenSampleOnHost(this, batch, logits, draws, sink);
}

/// <summary>The logits layout of a forward batch: which rows each sequence gets back.</summary>
public static class LogitBuffers
{
    /// <summary>Logit rows a sequence gets: every new token's with AllLogits, else its last.</summary>
    public static int Rows(ForwardSequence seq) => seq.AllLogits ? seq.Tokens.Length : 1;

    /// <summary>New arrays of the sizes <see cref="Check"/> wants.</summary>
    public static float[][] Allocate(IReadOnlyList<ForwardSequence> batch, int vocab)
    {
        var logits = new float[batch.Count][];
        // Every element is written by the forward pass before it is read: no zeroing.
        for (int s = 0; s < batch.Count; s++) logits[s] = GC.AllocateUninitializedArray<float>(checked(Rows(batch[s]) * vocab));
        return logits;
    }

    /// <summary>Throws unless there is one buffer per sequence, each exactly its rows × vocab long.</summary>
    public static void Check(IReadOnlyList<ForwardSequence> batch, float[][] logits, int vocab)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.Length != batch.Count)
            throw new ArgumentException($"{logits.Length} logits buffers for a batch of {batch.Count} sequences", nameof(logits));
        for (int s = 0; s < batch.Count; s++)
        {
            long want = (long)Rows(batch[s]) * vocab;
            if (logits[s] is null || logits[s].Length != want)
                throw new ArgumentException($"logits buffer {s} holds {logits[s]?.Length ?? 0} floats; sequence {s} needs {want} ({Rows(batch[s])} rows × vocabulary {vocab})", nameof(logits));
        }
    }
}
