namespace SteerEngine.Model;

/// <summary>A tensor to be written: its name, element type and shape; the bytes come from a callback.</summary>
public sealed record TensorSpec(string Name, DType DType, long[] Shape)
{
    public long ByteLength => checked(Shapes.ElementCount(Shape) * DTypes.Size(DType));
}
