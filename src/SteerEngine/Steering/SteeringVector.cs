namespace SteerEngine.Steering;

/// <summary>
/// A steering vector: one direction over the hidden size, or a per-layer set in the HF hidden-states
/// numbering, shape (layers+1, H), where row i is the output of block i-1 (DESIGN.md §3).
/// </summary>
public sealed class SteeringVector
{
    readonly float[][] _rows;

    SteeringVector(float[][] rows, bool perLayer, string source)
    {
        _rows = rows;
        PerLayer = perLayer;
        Source = source;
    }

    public bool PerLayer { get; }
    public string Source { get; }
    public int Hidden => _rows[0].Length;
    public int Rows => _rows.Length;

    public static SteeringVector Direction(float[] values, string source = "") => new([values], false, source);

    /// <param name="rows">(layers+1, H)</param>
    public static SteeringVector PerLayerSet(float[][] rows, string source = "")
    {
        if (rows.Length == 0 || rows.Any(r => r.Length != rows[0].Length))
            throw new ArgumentException($"{source}: a per-layer vector needs equal-length rows");
        return new(rows, true, source);
    }

    /// <summary>The direction that steers the output of block <paramref name="layer"/>.</summary>
    public float[] ForBlock(int layer)
    {
        if (!PerLayer) return _rows[0];
        if (layer + 1 >= _rows.Length || layer < 0)
            throw new ArgumentException($"{Source}: per-layer vector has {_rows.Length} rows (hidden states 0..{_rows.Length - 1}); block {layer} needs row {layer + 1}");
        return _rows[layer + 1];
    }

    /// <summary>Throws unless the rows have the model's hidden size; the message names <see cref="Source"/>.</summary>
    public void CheckHidden(int hidden)
    {
        if (Hidden != hidden)
            throw new ArgumentException($"{Source}: steering vector has {Hidden} elements, the model's hidden size is {hidden}");
    }

    /// <summary>The raw rows, (Rows, H).</summary>
    public float[] Row(int i) => _rows[i];
}
