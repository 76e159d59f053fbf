using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using NUnit.Framework;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Tests.Runtime;

/// <summary>
/// The fast kernels (native and managed) against the exact f32 reference kernels of Runtime/Cpu and
/// against each other, on random inputs (never zeros) at shapes that are no multiple of any tile.
/// Tolerances: GEMM vs the f32 path |Δ| ≤ 4e-3·Σ|x·w| (x is rounded to bf16: ≤ 2⁻⁹ relative per
/// element); native and managed GEMM paths bit-exact among themselves (one f32 chain per output);
/// RmsNorm 1e-6 relative; SwiGlu 2e-6 relative; attention and log-softmax 2e-5 absolute;
/// packing, RoPE and the steered residual add bit-exact.
/// </summary>
public unsafe partial class CpuKernelTests
{
    static readonly int[] Rows = [1, 3, 17, 65];
    static readonly (int Out, int In)[] Shapes = [(1, 7), (15, 130), (33, 2049), (1000, 130), (33, 1)];

    ManagedCpuKernels _managed = null!;

    [SetUp]
    public void SetUp() => _managed = new ManagedCpuKernels();

    static NativeCpuKernels Native()
    {
        if (!NativeCpu.IsAvailable) Assert.Ignore("libsteer_cpu is not built: run ./build.sh");
        return new NativeCpuKernels();
    }

    /// <summary>The managed kernels on every GEMM path this CPU runs (Vector512 runs emulated without AVX-512).</summary>
    static ManagedCpuKernels[] ManagedPaths() => Avx2.IsSupported && Fma.IsSupported
        ? [new(ManagedGemmPath.Scalar), new(ManagedGemmPath.Avx2), new(ManagedGemmPath.Avx512)]
        : [new(ManagedGemmPath.Scalar), new(ManagedGemmPath.Avx512)];

    static float[] Random(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = rng.NextDouble() * 0.95 + 0.05;
            a[i] = (float)((rng.Next(2) == 0 ? -u : u) * scale);
        }
        return a;
    }

    /// <summary>A bf16 weight matrix in native memory, as a memory-mapped file would hold it.</summary>
    sealed class Bf16Weights : IDisposable
    {
        public Bf16Weights(Random rng, int rows, int cols, DType dtype = DType.BF16)
        {
            Values = Random(rng, rows * cols, 0.5f);
            int size = dtype == DType.F32 ? 4 : 2;
            Data = (byte*)NativeMemory.Alloc((nuint)((long)rows * cols * size));
            for (int i = 0; i < Values.Length; i++)
                switch (dtype)
                {
                    case DType.BF16: ((ushort*)Data)[i] = BFloat16Convert.FromF32RoundNearestEven(Values[i]); break;
                    case DType.F16: ((Half*)Data)[i] = (Half)Values[i]; break;
                    default: ((float*)Data)[i] = Values[i]; break;
                }
            Matrix = new WeightMatrix("test", dtype, rows, cols, Data);
        }

        public float[] Values { get; }
        public byte* Data { get; }
        public WeightMatrix Matrix { get; }
        public void Dispose() => NativeMemory.Free(Data);
    }

    /// <summary>Σ|x_i·w_i| per output, the scale GEMM rounding errors are measured against.</summary>
    static double[] Magnitudes(float[] x, WeightMatrix w, int rows)
    {
        var mag = new double[rows * w.Rows];
        var row = new float[w.Cols];
        for (int o = 0; o < w.Rows; o++)
        {
            w.ReadRow(o, row);
            for (int r = 0; r < rows; r++)
            {
                double s = 0;
                for (int i = 0; i < w.Cols; i++) s += Math.Abs((double)x[r * w.Cols + i] * row[i]);
                mag[r * w.Rows + o] = s;
            }
        }
        return mag;
    }

    static double WorstScaled(float[] actual, float[] expected, double[] scale)
    {
        double worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]) / scale[i]);
        return worst;
    }

    static double WorstAbsolute(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double worst = 0;
        for (int i = 0; i < actual.Length; i++) worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]));
        return worst;
    }

    static double WorstRelative(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double worst = 0;
        for (int i = 0; i < actual.Length; i++)
            worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]) / Math.Max(Math.Abs((double)expected[i]), 1e-30));
        return worst;
    }

    [Test]
    public void A_matmul_row_is_bitwise_the_same_alone_and_among_other_rows()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(12);
        using var w = new Bf16Weights(rng, 75, 1031); // k spans several k blocks of every path
        using PackedMatrix packed = native.Pack(w.Matrix);
        const int rows = 37;
        float[] x = Random(rng, rows * 1031, 2f);
        foreach (ICpuKernels k in ManagedPaths().Prepend<ICpuKernels>(native))
        {
            string name = k is ManagedCpuKernels m ? $"managed {m.GemmPath}" : k.Name;
            var all = new float[rows * 75];
            k.MatMul(x, packed, all, rows);
            foreach (int first in new[] { 0, 5, 36 })
                foreach (int count in new[] { 1, 3, 4, 12 })
                {
                    if (first + count > rows) continue;
                    var part = new float[count * 75];
                    k.MatMul(x.AsSpan(first * 1031, count * 1031), packed, part, count);
                    Assert.That(part, Is.EqualTo(all.AsSpan(first * 75, count * 75).ToArray()), $"{name} rows {first}..{first + count - 1}");
                }
        }
    }

    [Test]
    public void A_product_over_stacked_matrices_is_bitwise_the_separate_products()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(13);
        const int cols = 131, rows = 9;
        using var a = new Bf16Weights(rng, 48, cols);
        using var b = new Bf16Weights(rng, 16, cols);
        using var c = new Bf16Weights(rng, 21, cols); // the last part may end mid-panel
        float[] x = Random(rng, rows * cols, 2f);
        foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
        {
            PackedMatrix[] parts = [k.Pack(a.Matrix), k.Pack(b.Matrix), k.Pack(c.Matrix)];
            using PackedMatrix stacked = PackedMatrix.Stack("abc", parts)!;
            Assert.That(stacked, Is.Not.Null);
            var all = new float[rows * 85];
            k.MatMul(x, stacked, all, rows);
            int offset = 0;
            foreach (PackedMatrix part in parts)
            {
                var y = new float[rows * part.Rows];
                k.MatMul(x, part, y, rows);
                for (int r = 0; r < rows; r++)
                    Assert.That(all.AsSpan(r * 85 + offset, part.Rows).ToArray(), Is.EqualTo(y.AsSpan(r * part.Rows, part.Rows).ToArray()), $"{k.Name} row {r}");
                offset += part.Rows;
                part.Dispose();
            }
        }
        using PackedMatrix odd = new("c", 21, cols), whole = new("a", 48, cols);
        Assert.That(PackedMatrix.Stack("ca", [odd, whole]), Is.Null, "a part ending mid-panel must be last");
    }

    [Test]
    public void Native_and_managed_matmul_match_the_exact_f32_matmul_within_bf16_rounding()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(11);
        foreach ((int outDim, int inDim) in Shapes)
            foreach (int rows in Rows)
            {
                using var w = new Bf16Weights(rng, outDim, inDim);
                using PackedMatrix packed = native.Pack(w.Matrix);
                float[] x = Random(rng, rows * inDim, 2f);
                var exact = new float[rows * outDim];
                MatMul.Forward(x, w.Matrix, exact, rows);
                double[] mag = Magnitudes(x, w.Matrix, rows);
                foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
                {
                    var y = Random(rng, rows * outDim); // garbage the kernel must overwrite
                    k.MatMul(x, packed, y, rows);
                    Assert.That(WorstScaled(y, exact, mag), Is.LessThanOrEqualTo(4e-3), $"{k.Name} rows={rows} out={outDim} in={inDim}");
                }
            }
    }

    [Test]
    public void Managed_matmul_matches_native_on_every_isa_and_gemm_path()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(12);
        int best = NativeCpu.SetIsa(-1);
        try
        {
            foreach ((int outDim, int inDim) in Shapes)
                foreach (int rows in Rows)
                {
                    using var w = new Bf16Weights(rng, outDim, inDim);
                    using PackedMatrix packed = _managed.Pack(w.Matrix);
                    float[] x = Random(rng, rows * inDim, 2f);
                    var expected = new float[rows * outDim];
                    _managed.MatMul(x, packed, expected, rows);
                    double[] mag = Magnitudes(x, w.Matrix, rows);
                    for (int isa = best; isa >= NativeCpu.IsaScalar; isa--)
                        for (int mode = NativeCpu.GemmDot; mode <= NativeCpu.GemmWide; mode++)
                        {
                            NativeCpu.SetIsa(isa);
                            NativeCpu.SetGemmMode(mode);
                            var y = new float[rows * outDim];
                            native.MatMul(x, packed, y, rows);
                            Assert.That(y, Is.EqualTo(expected), $"isa={isa} mode={mode} rows={rows} out={outDim} in={inDim}");
                        }
                }
        }
        finally
        {
            NativeCpu.SetIsa(-1);
            NativeCpu.SetGemmMode(NativeCpu.GemmAuto);
        }
    }

    [Test]
    public void Every_managed_gemm_path_gives_the_bits_of_native()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(21);
        ManagedCpuKernels[] paths = ManagedPaths();
        // Rows around the 4- and 6-row tiles; the shapes' k spans several blocks of either path, and
        // their panel counts leave part of a 4-panel task and part of a panel.
        foreach ((int outDim, int inDim) in Shapes.Append((75, 1031)))
            foreach (int rows in new[] { 1, 2, 3, 5, 6, 7, 13, 16, 24, 65 })
            {
                using var w = new Bf16Weights(rng, outDim, inDim);
                using PackedMatrix packed = native.Pack(w.Matrix);
                float[] x = Random(rng, rows * inDim, 2f);
                var expected = new float[rows * outDim];
                native.MatMul(x, packed, expected, rows);
                foreach (ManagedCpuKernels k in paths)
                {
                    var y = Random(rng, rows * outDim); // garbage the kernel must overwrite
                    k.MatMul(x, packed, y, rows);
                    Assert.That(y, Is.EqualTo(expected), $"{k.GemmPath} rows={rows} out={outDim} in={inDim}");
                }
            }
    }

    [Test]
    public void Native_matmul_matches_the_exported_c_reference()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(13);
        using var w = new Bf16Weights(rng, 77, 301);
        using PackedMatrix packed = native.Pack(w.Matrix);
        float[] x = Random(rng, 9 * 301, 2f);
        var y = new float[9 * 77];
        var reference = new float[9 * 77];
        native.MatMul(x, packed, y, 9);
        fixed (float* xp = x, rp = reference) NativeCpu.RefGemm(xp, 9, 301, packed.Data, 77, rp);
        Assert.That(WorstScaled(y, reference, Magnitudes(x, w.Matrix, 9)), Is.LessThanOrEqualTo(2e-5));
    }

    [TestCase(DType.BF16)]
    [TestCase(DType.F16)]
    [TestCase(DType.F32)]
    public void Native_and_managed_pack_every_source_type_identically(DType dtype)
    {
        NativeCpuKernels native = Native();
        using var w = new Bf16Weights(new Random(14), 37, 131, dtype);
        using PackedMatrix a = native.Pack(w.Matrix);
        using PackedMatrix b = _managed.Pack(w.Matrix);
        Assert.That(new ReadOnlySpan<byte>(a.Data, (int)a.Bytes).SequenceEqual(new ReadOnlySpan<byte>(b.Data, (int)b.Bytes)), Is.True);
        // Spot-check the documented layout: element (r, c) at ((r/16)·pairs + c/2)·32 + (r%16)·2 + c%2.
        var row = new float[131];
        w.Matrix.ReadRow(20, row);
        Assert.That(a.Data[(1 * a.Pairs + 65 / 2) * 32 + 4 * 2 + 1], Is.EqualTo(BFloat16Convert.FromF32RoundNearestEven(row[65])));
    }

    [Test]
    public void RmsNorm_matches_the_reference_in_both_implementations()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(15);
        foreach ((int rows, int n) in new[] { (1, 2048), (3, 7), (17, 130), (65, 33) })
        {
            float[] x = Random(rng, rows * n, 3f), weight = Random(rng, n);
            var expected = new float[rows * n];
            RmsNorm.Forward(x, weight, expected, rows, 1e-5f);
            foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
            {
                var y = new float[rows * n];
                k.RmsNorm(x, weight, y, rows, 1e-5f);
                Assert.That(WorstRelative(y, expected), Is.LessThanOrEqualTo(1e-6), $"{k.Name} rows={rows} n={n}");
            }
        }
    }

    [Test]
    public void Rope_is_bit_identical_in_native_managed_and_the_c_reference()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(16);
        foreach ((int rows, int heads, int hd) in new[] { (1, 32, 64), (3, 8, 128), (17, 5, 6), (65, 3, 34) })
        {
            float[] invFreq = Rope.InverseFrequencies(hd, 500000, null);
            int[] positions = Enumerable.Range(0, rows).Select(_ => rng.Next(100000)).ToArray();
            float[] x = Random(rng, rows * heads * hd);
            float[] a = (float[])x.Clone(), b = (float[])x.Clone(), c = (float[])x.Clone();
            native.Rope(a, rows, heads, hd, positions, invFreq);
            _managed.Rope(b, rows, heads, hd, positions, invFreq);
            fixed (float* cp = c, fp = invFreq)
            fixed (int* pp = positions)
                NativeCpu.RefRope(cp, rows, heads, hd, pp, fp);
            Assert.That(a, Is.EqualTo(c), $"native rows={rows} hd={hd}");
            Assert.That(b, Is.EqualTo(c), $"managed rows={rows} hd={hd}");
        }
    }

    [Test]
    public void SwiGlu_matches_the_reference_in_both_implementations()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(17);
        foreach (int n in new[] { 1, 15, 1000, 65 * 1001 })
        {
            float[] gate = Random(rng, n, 12f), up = Random(rng, n, 2f);
            float[] expected = (float[])gate.Clone();
            SwiGlu.Forward(expected, up);
            foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
            {
                float[] g = (float[])gate.Clone();
                k.SwiGlu(g, up);
                Assert.That(WorstRelative(g, expected), Is.LessThanOrEqualTo(2e-6), $"{k.Name} n={n}");
            }
        }
    }

    [Test]
    public void Residual_add_with_per_row_steering_terms_is_bit_identical_everywhere()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(18);
        float** table = stackalloc float*[3];
        foreach ((int rows, int h) in new[] { (1, 2048), (3, 7), (17, 130), (65, 1000) })
        {
            float[] x = Random(rng, rows * h, 4f), delta = Random(rng, rows * h), vectors = Random(rng, 3 * h);
            // row r gets r % 4 terms, of different vectors, multipliers and operations (adds alone on the rows with one term)
            var offsets = new int[rows + 1];
            var adds = new List<SteerAdd>();
            for (int r = 0; r < rows; r++)
            {
                for (int a = 0; a < r % 4; a++)
                {
                    var op = r % 4 == 1 ? SteeringOp.Add : (SteeringOp)((r + a) % 5);
                    (float lo, float hi) = op switch { SteeringOp.Ablate => (0f, 0f), SteeringOp.Set => (-0.5f, -0.5f), _ => (-0.5f, 0.75f) };
                    adds.Add(new SteerAdd((r + a) % 3, (float)(rng.NextDouble() * 16 - 8), op, lo, hi));
                }
                offsets[r + 1] = adds.Count;
            }
            SteerAdd[] addArray = adds.ToArray();
            var steering = new RowSteering(offsets, addArray, vectors);
            float[] a1 = (float[])x.Clone(), a2 = (float[])x.Clone(), a3 = (float[])x.Clone();
            native.ResidualAddSteered(a1, delta, rows, h, steering);
            _managed.ResidualAddSteered(a2, delta, rows, h, steering);
            fixed (float* xp = a3, dp = delta, vp = vectors)
            fixed (int* op = offsets)
            fixed (SteerAdd* ap = addArray)
            {
                for (int i = 0; i < 3; i++) table[i] = vp + i * h;
                NativeCpu.RefResidualAddSteered(xp, dp, rows, h, op, ap, table);
            }
            Assert.That(a1, Is.EqualTo(a3), $"native rows={rows}");
            Assert.That(a2, Is.EqualTo(a3), $"managed rows={rows}");
        }
    }

    [Test]
    public void Attention_matches_the_reference_for_prefill_and_decode_batches()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(19);
        (int N, int Start)[] seqDefs = [(1, 0), (1, 100), (37, 0), (70, 13), (5, 200), (130, 0)];
        foreach ((int heads, int kvHeads, int hd) in new[] { (8, 2, 64), (6, 6, 40), (16, 1, 128), (4, 2, 6) })
        {
            int kvDim = kvHeads * hd, qDim = heads * hd, rows = seqDefs.Sum(s => s.N);
            var keys = seqDefs.Select(s => GC.AllocateArray<float>((s.N + s.Start) * kvDim, pinned: true)).ToArray();
            var values = seqDefs.Select(s => GC.AllocateArray<float>((s.N + s.Start) * kvDim, pinned: true)).ToArray();
            for (int s = 0; s < seqDefs.Length; s++)
            {
                Random(rng, keys[s].Length).CopyTo(keys[s], 0);
                Random(rng, values[s].Length).CopyTo(values[s], 0);
            }
            float[] q = Random(rng, rows * qDim, 2f);
            var expected = new float[rows * qDim];
            var seqs = new AttentionSequence[seqDefs.Length];
            for (int s = 0, row = 0; s < seqDefs.Length; row += seqDefs[s].N, s++)
            {
                Attention.Forward(q.AsSpan(row * qDim, seqDefs[s].N * qDim), keys[s], values[s], expected.AsSpan(row * qDim, seqDefs[s].N * qDim),
                    seqDefs[s].N, seqDefs[s].Start, heads, kvHeads, hd);
                fixed (float* kp = keys[s], vp = values[s]) // pinned arrays: the pointers stay valid
                    seqs[s] = new AttentionSequence(kp, vp, row, seqDefs[s].N, seqDefs[s].Start);
            }
            foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
            {
                var output = Random(rng, rows * qDim);
                k.Attention(q, output, seqs, heads, kvHeads, hd);
                Assert.That(WorstAbsolute(output, expected), Is.LessThanOrEqualTo(2e-5), $"{k.Name} heads={heads} kv={kvHeads} hd={hd}");
            }
        }
    }

    [Test]
    public void LogSoftmax_matches_a_double_precision_computation()
    {
        NativeCpuKernels native = Native();
        var rng = new Random(20);
        foreach ((int rows, int v) in new[] { (1, 128256), (3, 7), (17, 1000) })
        {
            float[] logits = Random(rng, rows * v, 20f);
            var expected = new float[rows * v];
            for (int r = 0; r < rows; r++)
            {
                var x = logits.AsSpan(r * v, v);
                double max = x.ToArray().Max(), sum = 0;
                foreach (float f in x) sum += Math.Exp(f - max);
                for (int i = 0; i < v; i++) expected[r * v + i] = (float)(x[i] - max - Math.Log(sum));
            }
            foreach (ICpuKernels k in new ICpuKernels[] { native, _managed })
            {
                var output = new float[rows * v];
                k.LogSoftmax(logits, output, rows);
                Assert.That(WorstAbsolute(output, expected), Is.LessThanOrEqualTo(2e-5), $"{k.Name} rows={rows} v={v}");
            }
        }
    }

    [Test]
    public void Machine_probes_report_positive_rates()
    {
        Native();
        Assert.That(NativeCpu.ProbeF32FmaGflops(), Is.GreaterThan(0));
        Assert.That(NativeCpu.ProbeReadBandwidth(64 << 20, 1), Is.GreaterThan(0));
        if ((NativeCpu.Features() & NativeCpu.FeatureAvx512Bf16) != 0) Assert.That(NativeCpu.ProbeBf16DotGflops(), Is.GreaterThan(0));
    }
}
