namespace SteerEngine.Steering.Formats;

/// <summary>
/// One tensor as a vector file stores it, widened to f32: <see cref="Shape"/> is [H] or [rows, H] and
/// <see cref="Data"/> holds its elements in C order.
/// </summary>
internal sealed record VectorTensor(long[] Shape, float[] Data)
{
    public static VectorTensor Of(SteeringVector vector)
    {
        long[] shape = vector.PerLayer ? [vector.Rows, vector.Hidden] : [vector.Hidden];
        var data = new float[vector.Rows * vector.Hidden];
        for (int r = 0; r < vector.Rows; r++)
            vector.Row(r).CopyTo(data, r * vector.Hidden);
        return new VectorTensor(shape, data);
    }

    /// <summary>[H] is a direction, [layers+1, H] a per-layer set; any other shape is an error naming <paramref name="path"/>.</summary>
    public SteeringVector ToSteeringVector(string path)
    {
        if (Shape.Length is not (1 or 2))
            throw new InvalidDataException($"{path}: vector has shape {Format(Shape)}, expected [hidden] or [layers+1, hidden]");
        if (Shape.Any(d => d == 0))
            throw new InvalidDataException($"{path}: vector has shape {Format(Shape)}, which is empty");
        if (Shape.Length == 1)
            return SteeringVector.Direction(Data, path);
        int rows = (int)Shape[0], hidden = (int)Shape[1];
        return SteeringVector.PerLayerSet(Enumerable.Range(0, rows).Select(r => Data.AsSpan(r * hidden, hidden).ToArray()).ToArray(), path);
    }

    public static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
