using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SteerEngine.Model;

/// <summary>
/// bf16 is the top half of an IEEE f32, so widening is a 16-bit shift and exact; narrowing
/// rounds to nearest, ties to even, as PyTorch's <c>tensor.to(torch.bfloat16)</c> does.
/// </summary>
public static class BFloat16Convert
{
    // Set on every narrowed NaN: truncating a NaN whose payload sits in the low 16 bits
    // would otherwise leave an all-zero mantissa, which is infinity.
    const uint QuietNaNBit = 0x0040;

    public static float ToF32(ushort bf16) => BitConverter.UInt32BitsToSingle((uint)bf16 << 16);

    public static ushort FromF32RoundNearestEven(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f))
            return (ushort)((bits >> 16) | QuietNaNBit);
        // Adding 0x7FFF rounds up only past the halfway point; the extra lsb of the kept part
        // makes an exact tie round up only when that would make the result even.
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    /// <summary>Widens <paramref name="src"/> into the first src.Length elements of <paramref name="dst"/>.</summary>
    public static void ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"destination holds {dst.Length} elements, source has {src.Length}", nameof(dst));
        if (Vector512.IsHardwareAccelerated)
            ToF32Vector512(src, dst);
        else if (Vector256.IsHardwareAccelerated)
            ToF32Vector256(src, dst);
        else
            ToF32Scalar(src, dst);
    }

    /// <summary>Narrows <paramref name="src"/> into the first src.Length elements of <paramref name="dst"/>.</summary>
    public static void FromF32(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"destination holds {dst.Length} elements, source has {src.Length}", nameof(dst));
        if (Vector512.IsHardwareAccelerated)
            FromF32Vector512(src, dst);
        else if (Vector256.IsHardwareAccelerated)
            FromF32Vector256(src, dst);
        else
            FromF32Scalar(src, dst);
    }

    internal static void ToF32Scalar(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = ToF32(src[i]);
    }

    internal static void ToF32Vector512(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i <= src.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
        {
            var (lower, upper) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
            (lower << 16).AsSingle().StoreUnsafe(ref d, (nuint)i);
            (upper << 16).AsSingle().StoreUnsafe(ref d, (nuint)(i + Vector512<uint>.Count));
        }
        ToF32Scalar(src[i..], dst[i..]);
    }

    internal static void ToF32Vector256(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i <= src.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
        {
            var (lower, upper) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
            (lower << 16).AsSingle().StoreUnsafe(ref d, (nuint)i);
            (upper << 16).AsSingle().StoreUnsafe(ref d, (nuint)(i + Vector256<uint>.Count));
        }
        ToF32Scalar(src[i..], dst[i..]);
    }

    internal static void FromF32Scalar(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = FromF32RoundNearestEven(src[i]);
    }

    internal static void FromF32Vector512(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        ref float s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i <= src.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
        {
            var lower = Narrow(Vector512.LoadUnsafe(ref s, (nuint)i));
            var upper = Narrow(Vector512.LoadUnsafe(ref s, (nuint)(i + Vector512<float>.Count)));
            Vector512.Narrow(lower, upper).StoreUnsafe(ref d, (nuint)i);
        }
        FromF32Scalar(src[i..], dst[i..]);
    }

    internal static void FromF32Vector256(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        ref float s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        for (; i <= src.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
        {
            var lower = Narrow(Vector256.LoadUnsafe(ref s, (nuint)i));
            var upper = Narrow(Vector256.LoadUnsafe(ref s, (nuint)(i + Vector256<float>.Count)));
            Vector256.Narrow(lower, upper).StoreUnsafe(ref d, (nuint)i);
        }
        FromF32Scalar(src[i..], dst[i..]);
    }

    // FromF32RoundNearestEven lane-wise; the result is in the low 16 bits of each lane.
    static Vector512<uint> Narrow(Vector512<float> f)
    {
        var bits = f.AsUInt32();
        var kept = bits >> 16;
        var rounded = (bits + Vector512.Create(0x7FFFu) + (kept & Vector512<uint>.One)) >> 16;
        var isNaN = ~Vector512.Equals(f, f).AsUInt32();
        return Vector512.ConditionalSelect(isNaN, kept | Vector512.Create(QuietNaNBit), rounded);
    }

    static Vector256<uint> Narrow(Vector256<float> f)
    {
        var bits = f.AsUInt32();
        var kept = bits >> 16;
        var rounded = (bits + Vector256.Create(0x7FFFu) + (kept & Vector256<uint>.One)) >> 16;
        var isNaN = ~Vector256.Equals(f, f).AsUInt32();
        return Vector256.ConditionalSelect(isNaN, kept | Vector256.Create(QuietNaNBit), rounded);
    }
}
