using NUnit.Framework;
using SteerEngine.Model;

namespace SteerEngine.Tests.Model;

public class BFloat16ConvertTests
{
    // Decodes sign, exponent and mantissa by the IEEE definition, sharing nothing with the shift trick under test.
    static double ReferenceToDouble(ushort bf16)
    {
        int sign = bf16 >> 15;
        int exponent = (bf16 >> 7) & 0xFF;
        int mantissa = bf16 & 0x7F;
        double magnitude = exponent switch
        {
            0 => Math.ScaleB(mantissa, -126 - 7),
            0xFF => mantissa == 0 ? double.PositiveInfinity : double.NaN,
            _ => Math.ScaleB(128 + mantissa, exponent - 127 - 7),
        };
        return sign == 1 ? -magnitude : magnitude;
    }

    // Picks the nearer of the two bf16 values around f, ties to the even one; past the largest
    // finite bf16 the next value up is 2^128, which IEEE rounding treats as infinity.
    static ushort ReferenceFromF32(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        ushort below = (ushort)(bits >> 16);
        ushort above = (ushort)(below + 1);
        double belowValue = Math.Abs(ReferenceToDouble(below));
        double aboveValue = (above & 0x7FFF) == 0x7F80 ? Math.ScaleB(1.0, 128) : Math.Abs(ReferenceToDouble(above));
        double x = Math.Abs((double)f);
        double toBelow = x - belowValue, toAbove = aboveValue - x;
        if (toBelow < toAbove) return below;
        if (toAbove < toBelow) return above;
        return (below & 1) == 0 ? below : above;
    }

    static IEnumerable<float> SpecialFloats()
    {
        uint[] bits =
        [
            0x00000000, 0x80000000, 0x7F800000, 0xFF800000, // ±0, ±Inf
            0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBF0000, // NaNs, incl. payload only in the low bits
            0x00000001, 0x807FFFFF, 0x00008000, 0x00018000, 0x0000FFFF, // subnormals and subnormal ties
            0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, // ties to even both ways, just below and above a tie
            0x7F7F7FFF, 0x7F7F8000, 0xFF7F8000, 0x7F7FFFFF, // largest finite, ties into infinity
            0x007F8000, 0x00FF8000, // tie across the subnormal/normal boundary
        ];
        return bits.Select(BitConverter.UInt32BitsToSingle);
    }

    // Uniform bit patterns (every class of float) and uniform magnitudes across the exponent range.
    static IEnumerable<float> RandomFloats(int seed)
    {
        var random = new Random(seed);
        while (true)
        {
            yield return BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32));
            yield return (float)(random.NextDouble() * 2 - 1) * MathF.Pow(2, random.Next(-140, 128));
        }
    }

    [Test]
    public void Widening_every_bf16_bit_pattern_matches_the_ieee_definition()
    {
        for (int b = 0; b <= ushort.MaxValue; b++)
        {
            float f = BFloat16Convert.ToF32((ushort)b);
            double expected = ReferenceToDouble((ushort)b);
            if (double.IsNaN(expected))
                Assert.That(float.IsNaN(f), $"0x{b:X4}");
            else
                Assert.That(BitConverter.SingleToUInt32Bits(f), Is.EqualTo(BitConverter.SingleToUInt32Bits((float)expected)), $"0x{b:X4}");
        }
    }

    [Test]
    public void Narrowing_rounds_to_nearest_even_including_ties_subnormals_and_overflow()
    {
        foreach (float f in SpecialFloats().Concat(RandomFloats(seed: 1).Take(40_000)))
        {
            if (float.IsNaN(f))
                continue;
            Assert.That(BFloat16Convert.FromF32RoundNearestEven(f), Is.EqualTo(ReferenceFromF32(f)),
                $"0x{BitConverter.SingleToUInt32Bits(f):X8}");
        }
    }

    [TestCase(0x7FC00000u)]
    [TestCase(0xFFC00000u)]
    [TestCase(0x7F800001u)]
    [TestCase(0xFF80FFFFu)]
    public void Narrowing_keeps_nan_a_nan_with_its_sign(uint bits)
    {
        ushort b = BFloat16Convert.FromF32RoundNearestEven(BitConverter.UInt32BitsToSingle(bits));
        Assert.That(float.IsNaN(BFloat16Convert.ToF32(b)), $"0x{b:X4}");
        Assert.That(b >> 15, Is.EqualTo(bits >> 31));
    }

    [Test]
    public void Narrowing_then_widening_is_identity_on_bf16_values()
    {
        for (int b = 0; b <= ushort.MaxValue; b++)
        {
            float f = BFloat16Convert.ToF32((ushort)b);
            if (!float.IsNaN(f))
                Assert.That(BFloat16Convert.FromF32RoundNearestEven(f), Is.EqualTo((ushort)b));
        }
    }

    static readonly int[] OddLengths = [0, 1, 3, 15, 17, 31, 33, 63, 65, 97, 1001];

    [TestCaseSource(nameof(OddLengths))]
    public void Every_vector_width_widens_like_the_scalar_path(int length)
    {
        var random = new Random(length);
        var src = Enumerable.Range(0, length).Select(_ => (ushort)random.Next(0, 65536)).ToArray();
        var scalar = new float[length];
        BFloat16Convert.ToF32Scalar(src, scalar);

        var widths = new (string Name, Action<ReadOnlySpan<ushort>, Span<float>> Convert)[]
        {
            ("Vector512", BFloat16Convert.ToF32Vector512),
            ("Vector256", BFloat16Convert.ToF32Vector256),
            ("dispatch", BFloat16Convert.ToF32),
        };
        foreach (var (name, convert) in widths)
        {
            var dst = new float[length];
            convert(src, dst);
            Assert.That(dst.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(scalar.Select(BitConverter.SingleToUInt32Bits)), name);
        }
    }

    [TestCaseSource(nameof(OddLengths))]
    public void Every_vector_width_narrows_like_the_scalar_path(int length)
    {
        var src = SpecialFloats().Concat(RandomFloats(seed: length)).Take(length).ToArray();
        var scalar = new ushort[length];
        BFloat16Convert.FromF32Scalar(src, scalar);

        var widths = new (string Name, Action<ReadOnlySpan<float>, Span<ushort>> Convert)[]
        {
            ("Vector512", BFloat16Convert.FromF32Vector512),
            ("Vector256", BFloat16Convert.FromF32Vector256),
            ("dispatch", BFloat16Convert.FromF32),
        };
        foreach (var (name, convert) in widths)
        {
            var dst = new ushort[length];
            convert(src, dst);
            Assert.That(dst, Is.EqualTo(scalar), name);
        }
    }

    [Test]
    public void Destination_shorter_than_source_is_rejected()
    {
        Assert.That(() => BFloat16Convert.ToF32(new ushort[5], new float[4]), Throws.ArgumentException);
        Assert.That(() => BFloat16Convert.FromF32(new float[5], new ushort[4]), Throws.ArgumentException);
    }
}
