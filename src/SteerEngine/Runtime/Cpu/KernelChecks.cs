namespace SteerEngine.Runtime.Cpu;

/// <summary>Argument checks shared by both kernel implementations: a wrong length is a bug in the caller,
/// reported before native code could read past a buffer.</summary>
static class Check
{
    public static void Length<T>(ReadOnlySpan<T> span, long needed, string what, string op)
    {
        if (span.Length < needed) throw new ArgumentException($"{op}: {what} holds {span.Length} elements, needs {needed}");
    }

    public static void Length<T>(Span<T> span, long needed, string what, string op) => Length((ReadOnlySpan<T>)span, needed, what, op);

    public static void Steering(RowSteering s, int rows, int hidden)
    {
        if (s.RowAdds.Length != rows + 1) throw new ArgumentException($"steering: {s.RowAdds.Length} row offsets for {rows} rows, expected {rows + 1}");
        if (s.Vectors.Length % hidden != 0) throw new ArgumentException($"steering: vector block of {s.Vectors.Length} floats is not a multiple of hidden size {hidden}");
        int count = s.Vectors.Length / hidden;
        if (s.RowAdds[0] != 0 || s.RowAdds[rows] > s.Adds.Length) throw new ArgumentException("steering: row offsets out of range of the adds");
        for (int r = 0; r < rows; r++)
            if (s.RowAdds[r + 1] < s.RowAdds[r]) throw new ArgumentException($"steering: row offsets decrease at row {r}");
        foreach (SteerAdd a in s.Adds[..s.RowAdds[rows]])
        {
            if ((uint)a.Vector >= (uint)count) throw new ArgumentException($"steering: vector index {a.Vector} outside the {count} vectors");
            if (a.Offset < 0 || a.Width < 0 || (long)a.Offset + (a.Width == 0 ? hidden : a.Width) > hidden)
                throw new ArgumentException($"steering: slice at {a.Offset} of width {a.Width} outside a row of {hidden}");
        }
    }

    public static unsafe void Attention(ReadOnlySpan<float> q, Span<float> output, ReadOnlySpan<AttentionSequence> sequences,
        int heads, int kvHeads, int headDim)
    {
        if (kvHeads <= 0 || heads % kvHeads != 0) throw new ArgumentException($"attention: {heads} heads do not group over {kvHeads} KV heads");
        if (headDim > 256 || headDim % 2 != 0) throw new ArgumentException($"attention: head size {headDim} must be even and at most 256");
        if (heads / kvHeads > 64) throw new ArgumentException($"attention: at most 64 query heads per KV head, got {heads / kvHeads}");
        long rows = 0;
        foreach (AttentionSequence s in sequences)
        {
            if (s.Count <= 0 || s.Start < 0 || s.Keys is null || s.Values is null)
                throw new ArgumentException($"attention: sequence at row {s.Row} has {s.Count} tokens, start {s.Start}, or no cache");
            rows = Math.Max(rows, (long)s.Row + s.Count);
        }
        Length(q, rows * heads * headDim, "q", "attention");
        Length(output, rows * heads * headDim, "output", "attention");
    }
}
