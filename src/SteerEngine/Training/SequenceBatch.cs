namespace SteerEngine.Training;

/// <summary>A token sequence scored on its response: tokens[PromptLength..] are the response.</summary>
public sealed record ScoredSequence(int[] Tokens, int PromptLength)
{
    public int ResponseLength => Tokens.Length - PromptLength;
}

/// <summary>
/// Whole sequences, each from position 0 and unpadded, laid out as consecutive rows of one (T, ·) buffer.
/// The response rows are those whose logits score a response token: positions PromptLength−1 .. n−2.
/// </summary>
public sealed class SequenceBatch
{
    public SequenceBatch(IReadOnlyList<ScoredSequence> sequences, int vocabSize)
    {
        if (sequences.Count == 0) throw new ArgumentException("a training batch needs at least one sequence");
        Sequences = sequences;
        Offsets = new int[sequences.Count + 1];
        for (int s = 0; s < sequences.Count; s++)
        {
            ScoredSequence seq = sequences[s];
            if (seq.PromptLength < 1 || seq.ResponseLength < 1)
                throw new ArgumentException($"sequence {s}: prompt length {seq.PromptLength} of {seq.Tokens.Length} tokens; need a non-empty prompt and response");
            foreach (int t in seq.Tokens)
                if ((uint)t >= (uint)vocabSize) throw new ArgumentException($"sequence {s}: token id {t} is outside the vocabulary (size {vocabSize})");
            Offsets[s + 1] = Offsets[s] + seq.Tokens.Length;
        }
        Rows = Offsets[^1];
        PositionOfRow = new int[Rows];
        var responseRows = new List<int>();
        var targets = new List<int>();
        for (int s = 0; s < sequences.Count; s++)
        {
            ScoredSequence seq = sequences[s];
            for (int i = 0; i < seq.Tokens.Length; i++) PositionOfRow[Offsets[s] + i] = i;
            for (int i = seq.PromptLength; i < seq.Tokens.Length; i++)
            {
                responseRows.Add(Offsets[s] + i - 1);
                targets.Add(seq.Tokens[i]);
            }
        }
        ResponseRows = [.. responseRows];
        Targets = [.. targets];
    }

    public IReadOnlyList<ScoredSequence> Sequences { get; }
    public int Count => Sequences.Count;
    /// <summary>(Count+1) first row of each sequence; the last entry is <see cref="Rows"/>.</summary>
    public int[] Offsets { get; }
    public int Rows { get; }
    public int[] PositionOfRow { get; }
    /// <summary>(R) the rows whose logits score a response token, grouped by sequence in order.</summary>
    public int[] ResponseRows { get; }
    /// <summary>(R) the token each response row scores.</summary>
    public int[] Targets { get; }

    public int Length(int sequence) => Offsets[sequence + 1] - Offsets[sequence];
}
