namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// The steering terms of one layer and hook point for every row of a batch, flat: row r applies
/// Adds[RowAdds[r] .. RowAdds[r+1]) in order, by default x_r += a.Multiplier · Vectors[a.Vector] (see <see cref="SteerAdd"/>).
/// Vectors is one (count, row width) block so native code can address it without pinning per vector;
/// a term on a slice of the row reads the first slice-width values of its vector's row.
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
