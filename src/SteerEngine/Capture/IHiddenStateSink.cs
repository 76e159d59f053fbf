namespace SteerEngine.Capture;

/// <summary>
/// Receives the residual stream during a forward pass, in Hugging Face output_hidden_states
/// numbering: entry 0 = embedding output, entry i = output of block i-1, entry L = the output
/// after the final norm (which replaces block L-1's raw output, as HF does).
/// </summary>
public interface IHiddenStateSink
{
    /// <param name="entry">0..L</param>
    /// <param name="states">(rows, H) one row per token of the batch</param>
    /// <param name="layout">which sequence and position each row belongs to</param>
    void Record(int entry, ReadOnlySpan<float> states, BatchLayout layout);
}

/// <summary>The sequence index and position of each token row in a forward batch.</summary>
public sealed class BatchLayout(int[] sequenceOfRow, int[] positionOfRow)
{
    public int[] SequenceOfRow { get; } = sequenceOfRow;
    public int[] PositionOfRow { get; } = positionOfRow;
    public int Rows => SequenceOfRow.Length;
}
