namespace SteerEngine.Model;

/// <summary>Arithmetic on tensor shapes shared by readers and writers.</summary>
internal static class Shapes
{
    /// <summary>Product of the dimensions (1 for a scalar); throws OverflowException past long.</summary>
    public static long ElementCount(long[] shape)
    {
        long n = 1;
        foreach (long d in shape)
            n = checked(n * d);
        return n;
    }

    public static string Format(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
