using NUnit.Framework;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Training.Backward;

namespace SteerEngine.Tests.Runtime;

/// <summary>
/// The transposed packing the BiPO backward multiplies by (dx = dy · W as MatMul(dy, packed Wᵀ)): its bytes
/// against Pack of a transposed copy, and its products on every native ISA and GEMM mode and every managed
/// path against the plain reference MatMulBackward (dx = dy · W with W widened exactly).
/// </summary>
public unsafe partial class CpuKernelTests
{
    [TestCase(DType.BF16)]
    [TestCase(DType.F32)]
    [TestCase(DType.F16)]
    public void Transposed_pack_is_the_pack_of_a_transposed_copy(DType dtype)
    {
        NativeCpuKernels native = Native();
        var rng = new Random(21);
        foreach ((int outDim, int inDim) in Shapes.Append((40, 17)))
        {
            using var w = new Bf16Weights(rng, outDim, inDim, dtype);
            using var copy = new Bf16Weights(rng, inDim, outDim, dtype);
            int size = dtype == DType.F32 ? 4 : 2;
            for (int r = 0; r < outDim; r++)
                for (int c = 0; c < inDim; c++)
                    Buffer.MemoryCopy(w.Data + ((long)r * inDim + c) * size, copy.Data + ((long)c * outDim + r) * size, size, size);
            using PackedMatrix transposed = TransposedPack.Pack(w.Matrix);
            Assert.That((transposed.Rows, transposed.Cols), Is.EqualTo((inDim, outDim)));
            foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
            {
                using PackedMatrix expected = k.Pack(copy.Matrix);
                Assert.That(new ReadOnlySpan<byte>(transposed.Data, (int)transposed.Bytes).SequenceEqual(new ReadOnlySpan<byte>(expected.Data, (int)expected.Bytes)),
                    $"{k.Name} {dtype} ({outDim}, {inDim})");
            }
        }
    }

    [Test]
    public void Matmul_on_the_transposed_pack_matches_the_plain_input_gradient_on_every_path()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(22);
        int best = NativeCpu.SetIsa(-1);
        try
        {
            foreach ((int outDim, int inDim) in Shapes)
                foreach (int rows in Rows)
                {
                    using var w = new Bf16Weights(rng, outDim, inDim);
                    using PackedMatrix transposed = TransposedPack.Pack(w.Matrix);
                    float[] dy = Random(rng, rows * outDim, 2f);
                    var reference = new float[rows * inDim];
                    MatMulBackward.Backward(dy, w.Matrix, reference, rows);
                    double[] mag = TransposedMagnitudes(dy, w.Matrix, rows);
                    var managed = new float[rows * inDim];
                    _managed.MatMul(dy, transposed, managed, rows);
                    Assert.That(WorstScaled(managed, reference, mag), Is.LessThanOrEqualTo(4e-3), $"managed rows={rows} out={outDim} in={inDim}");
                    foreach (ManagedCpuKernels m in ManagedPaths())
                    {
                        var y = Random(rng, rows * inDim);
                        m.MatMul(dy, transposed, y, rows);
                        Assert.That(y, Is.EqualTo(managed), $"managed {m.GemmPath} rows={rows} out={outDim} in={inDim}");
                    }
                    for (int isa = best; isa >= NativeCpu.IsaScalar; isa--)
                        for (int mode = NativeCpu.GemmDot; mode <= NativeCpu.GemmWide; mode++)
                        {
                            NativeCpu.SetIsa(isa);
                            NativeCpu.SetGemmMode(mode);
                            var y = Random(rng, rows * inDim);
                            native.MatMul(dy, transposed, y, rows);
                            Assert.That(y, Is.EqualTo(managed), $"isa={isa} mode={mode} rows={rows} out={outDim} in={inDim}");
                        }
                }
        }
        finally
        {
            NativeCpu.SetIsa(-1);
            NativeCpu.SetGemmMode(NativeCpu.GemmAuto);
        }
    }

    /// <summary>Σ_o |dy[r, o] · W[o, i]| per input column, the scale of dx's rounding errors.</summary>
    static double[] TransposedMagnitudes(float[] dy, WeightMatrix w, int rows)
    {
        var mag = new double[rows * w.Cols];
        var row = new float[w.Cols];
        for (int o = 0; o < w.Rows; o++)
        {
            w.ReadRow(o, row);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < w.Cols; i++) mag[r * w.Cols + i] += Math.Abs((double)dy[r * w.Rows + o] * row[i]);
        }
        return mag;
    }
}
