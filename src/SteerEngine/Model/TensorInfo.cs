namespace SteerEngine.Model;

/// <summary>
/// Where one tensor lives: <paramref name="DataOffset"/> is the absolute byte offset of its
/// first element in <paramref name="File"/>, not the offset within the safetensors data buffer.
/// </summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, string File, long DataOffset, long ByteLength)
{
    // Computed on read so that a `with` copy that changes Shape cannot carry a stale count.
    public long ElementCount => Shapes.ElementCount(Shape);
}
