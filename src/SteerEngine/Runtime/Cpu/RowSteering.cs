namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// The steering adds of one layer for every row of a batch, flat: row r adds
/// Adds[RowAdds[r] .. RowAdds[r+1]) in order, each x_r += a.Multiplier · Vectors[a.Vector].
/// Vectors is one (count, hidden) block so native code can address it without pinning per vector.
/// </summary>
public readonly ref struct RowSteering(ReadOnlySpan<int> rowAdds, ReadOnlySpan<SteerAdd> adds, ReadOnlySpan<float> vectors)
{
    /// <summary>(rows + 1) offsets into Adds.</summary>
    public ReadOnlySpan<int> RowAdds { get; } = rowAdds;
    public ReadOnlySpan<SteerAdd> Adds { get; } = adds;
    /// <summary>(count, hidden) steering vectors.</summary>
    public ReadOnlySpan<float> Vectors { get; } = vectors;

    public bool IsEmpty => RowAdds.IsEmpty;
}
