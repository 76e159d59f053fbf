using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;
using SteerEngine.Training.Backward;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The training backward's kernels (kernels/*_backward.cu) on native/cuemu against the CPU's hand-written backward
/// (Training/Backward), on random inputs at lengths that are not multiples of a warp.
/// </summary>
[TestFixture]
public class BackwardKernelTests
{
    CudaDevice _d = null!;
    readonly Random _rng = new(4321);

    [SetUp] public void Open() => _d = Emulator.UnderTest();
    [TearDown] public void Close() => _d?.Dispose();

    float[] Random(int n, float scale = 1f) => Compare.RandomVector(_rng, n, scale);
    static float[] RoundBf16(float[] x) => x.Select(v => DeviceWeights.FromBf16(DeviceWeights.ToBf16(v))).ToArray();
    DevicePtr Up<T>(T[] x) where T : unmanaged => _d.AllocUpload<T>(x);
    float[] DownF32(DevicePtr p, int n) { var r = new float[n]; _d.Download<float>(p, r); return r; }
    float[] DownBf16(DevicePtr p, int n) { var r = new ushort[n]; _d.Download<ushort>(p, r); return r.Select(DeviceWeights.FromBf16).ToArray(); }

    [Test]
    public void Attention_backward_matches_the_cpu_reference_over_gqa_groups_and_two_sequences()
    {
        const int nh = 4, nkv = 2, hd = 64, qd = nh * hd, kvd = nkv * hd, width = qd + 2 * kvd;
        int[] lengths = [37, 5];
        int T = lengths.Sum();
        float[] q = RoundBf16(Random(T * qd)), k = RoundBf16(Random(T * kvd)), v = RoundBf16(Random(T * kvd)), dOut = Random(T * qd);
        // Device layout: each sequence's (2, n, kvd) bf16 keys and values, as the training pass writes them.
        var kv = new ushort[2 * T * kvd];
        var kvBase = new ulong[lengths.Length];
        int[] rowStart = [0, lengths[0]], seqOfRow = new int[T], posOfRow = new int[T];
        DevicePtr kvDevice = _d.Alloc(kv.Length * 2L);
        for (int s = 0; s < lengths.Length; s++)
        {
            int r0 = rowStart[s], n = lengths[s];
            for (int i = 0; i < n; i++)
            {
                seqOfRow[r0 + i] = s;
                posOfRow[r0 + i] = i;
                for (int c = 0; c < kvd; c++)
                {
                    kv[2 * r0 * kvd + i * kvd + c] = DeviceWeights.ToBf16(k[(r0 + i) * kvd + c]);
                    kv[2 * r0 * kvd + (n + i) * kvd + c] = DeviceWeights.ToBf16(v[(r0 + i) * kvd + c]);
                }
            }
            kvBase[s] = (kvDevice + 2L * r0 * kvd * 2).Address;
        }
        _d.Upload<ushort>(kvDevice, kv);
        DevicePtr qDevice = Up(q.Select(DeviceWeights.ToBf16).ToArray()), dOutDevice = Up(dOut), stats = _d.Alloc(8L * T * nh), dQkv = _d.Alloc(4L * T * width);
        DevicePtr seq = Up(seqOfRow), pos = Up(posOfRow), starts = Up(rowStart), lens = Up(lengths), bases = Up(kvBase);
        float scale = 1f / MathF.Sqrt(hd);
        _d.Launch("attention_backward_query", new Dim3((uint)T, nh), new Dim3(32), qDevice, dOutDevice, seq, pos, bases, lens, nh, nkv, hd, scale, stats, dQkv);
        _d.Launch("attention_backward_key", new Dim3((uint)T, nkv), new Dim3(32), qDevice, dOutDevice, seq, pos, starts, lens, bases, lens, nh, nkv, hd, scale, stats, dQkv);
        float[] got = DownF32(dQkv, T * width);

        var dq = new float[T * qd];
        var dk = new float[T * kvd];
        var dv = new float[T * kvd];
        for (int s = 0; s < lengths.Length; s++)
        {
            int r0 = rowStart[s], n = lengths[s];
            AttentionBackward.Backward(q.AsSpan(r0 * qd, n * qd), k.AsSpan(r0 * kvd, n * kvd), v.AsSpan(r0 * kvd, n * kvd), dOut.AsSpan(r0 * qd, n * qd),
                dq.AsSpan(r0 * qd, n * qd), dk.AsSpan(r0 * kvd, n * kvd), dv.AsSpan(r0 * kvd, n * kvd), n, nh, nkv, hd);
        }
        float[] Columns(int first, int count) => Enumerable.Range(0, T).SelectMany(r => got.AsSpan(r * width + first, count).ToArray()).ToArray();
        Assert.That(Compare.RelativeMaxError(Columns(0, qd), dq), Is.LessThan(1e-5), "dq");
        Assert.That(Compare.RelativeMaxError(Columns(qd, kvd), dk), Is.LessThan(1e-5), "dk");
        Assert.That(Compare.RelativeMaxError(Columns(qd + kvd, kvd), dv), Is.LessThan(1e-5), "dv");
    }

    [Test]
    public void Rmsnorm_backward_matches_the_cpu_reference_on_picked_rows_accumulating()
    {
        const int rows = 9, n = 200;
        int[] picked = [7, 2, 4];
        float[] x = Random(rows * n, 3f), w = Random(n), dy = Random(picked.Length * n), dx = Random(rows * n);
        DevicePtr dxDevice = Up(dx);
        _d.Launch("rmsnorm_backward", new Dim3((uint)picked.Length), new Dim3(64), Up(x), Up(picked), Up(w), Up(dy), dxDevice, n, 1e-5f, 1);
        float[] want = (float[])dx.Clone();
        for (int b = 0; b < picked.Length; b++)
            RmsNormBackward.Backward(x.AsSpan(picked[b] * n, n), w, dy.AsSpan(b * n, n), want.AsSpan(picked[b] * n, n), 1, 1e-5f, accumulate: true);
        Assert.That(Compare.RelativeMaxError(DownF32(dxDevice, rows * n), want), Is.LessThan(1e-5));
    }

    [Test]
    public void Qk_norm_rope_backward_matches_the_cpu_rope_and_head_norm_backward()
    {
        ModelConfig c = ModelShapes.Get("qwen3-tiny");
        int nh = c.NumHeads, nkv = c.NumKvHeads, hd = c.HeadDim, qd = nh * hd, kvd = nkv * hd, width = qd + 2 * kvd, T = 5;
        int[] positions = [0, 3, 17, 40, 1000];
        float[] raw = Random(T * width, 2f), grad = Random(T * width), qNorm = Random(hd), kNorm = Random(hd);
        DevicePtr output = _d.Alloc(2L * T * width);
        _d.Launch("qk_norm_rope_backward", new Dim3((uint)T), new Dim3(32 * (uint)(nh + nkv)), Up(grad), Up(raw),
            Up(Rope.InverseFrequencies(hd, c.RopeTheta, c.RopeScaling)), Up(positions), Up(qNorm), Up(kNorm), (float)c.RmsNormEps, output, nh, nkv, hd);

        var ropeBackward = new RopeBackward(new Rope(c));
        var want = (float[])grad.Clone();
        for (int r = 0; r < T; r++)
        {
            Span<float> row = want.AsSpan(r * width, width);
            ropeBackward.Apply(row[..qd], nh, positions[r]);
            ropeBackward.Apply(row.Slice(qd, kvd), nkv, positions[r]);
            RmsNormBackward.Backward(raw.AsSpan(r * width, qd), qNorm, row[..qd], row[..qd], nh, (float)c.RmsNormEps);
            RmsNormBackward.Backward(raw.AsSpan(r * width + qd, kvd), kNorm, row.Slice(qd, kvd), row.Slice(qd, kvd), nkv, (float)c.RmsNormEps);
        }
        Assert.That(Compare.RelativeMaxError(DownBf16(output, T * width), want), Is.LessThan(4e-3));
    }

    [Test]
    public void Swiglu_backward_matches_the_cpu_reference()
    {
        const int T = 3, I = 77;
        float[] gateUp = Random(T * 2 * I, 4f), dAct = Random(T * I);
        DevicePtr output = _d.Alloc(2L * T * 2 * I);
        _d.Launch("swiglu_backward", new Dim3(T), new Dim3(32), Up(gateUp), Up(dAct), output, I);
        var want = new float[T * 2 * I];
        for (int r = 0; r < T; r++)
            SwiGluBackward.Backward(gateUp.AsSpan(r * 2 * I, I), gateUp.AsSpan(r * 2 * I + I, I), dAct.AsSpan(r * I, I),
                want.AsSpan(r * 2 * I, I), want.AsSpan(r * 2 * I + I, I));
        Assert.That(Compare.RelativeMaxError(DownBf16(output, T * 2 * I), want), Is.LessThan(4e-3));
    }

    [Test]
    public void Log_softmax_kernels_over_two_vocabulary_slices_give_the_whole_rows_log_prob_and_gradient()
    {
        const int rows = 3, V = 301, slice = 151; // two slices, the second padded by one column
        float[] z = Random(rows * V, 5f), dRow = Random(rows);
        int[] targets = [0, 150, 300];
        var stats = new float[2][];
        var logits = new DevicePtr[2];
        for (int part = 0; part < 2; part++)
        {
            int first = part * slice, valid = Math.Min(slice, V - first);
            var slab = new float[rows * slice];
            for (int r = 0; r < rows; r++) z.AsSpan(r * V + first, valid).CopyTo(slab.AsSpan(r * slice, valid));
            logits[part] = Up(slab);
            DevicePtr s = _d.Alloc(12L * rows);
            _d.Launch("log_softmax_partial", new Dim3(rows), new Dim3(64), logits[part], slice, valid, first, Up(targets), s);
            stats[part] = DownF32(s, 3 * rows);
        }
        var lse = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double max = z.AsSpan(r * V, V).ToArray().Max(), sum = 0;
            for (int i = 0; i < V; i++) sum += Math.Exp(z[r * V + i] - max);
            lse[r] = (float)(max + Math.Log(sum));
            double merged = Math.Max(stats[0][3 * r], stats[1][3 * r]);
            double mergedSum = stats[0][3 * r + 1] * Math.Exp(stats[0][3 * r] - merged) + stats[1][3 * r + 1] * Math.Exp(stats[1][3 * r] - merged);
            Assert.That(merged + Math.Log(mergedSum), Is.EqualTo(lse[r]).Within(1e-5), $"row {r} log-partition");
            Assert.That(Math.Max(stats[0][3 * r + 2], stats[1][3 * r + 2]), Is.EqualTo(z[r * V + targets[r]]), $"row {r} target logit");
        }
        for (int part = 0; part < 2; part++)
        {
            int first = part * slice, valid = Math.Min(slice, V - first);
            DevicePtr dz = _d.Alloc(2L * rows * slice);
            _d.Launch("log_softmax_backward", new Dim3(rows), new Dim3(64), logits[part], slice, valid, first, Up(targets), Up(lse), Up(dRow), dz);
            float[] got = DownBf16(dz, rows * slice);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < slice; i++)
                {
                    double want = i >= valid ? 0 : dRow[r] * ((first + i == targets[r] ? 1 : 0) - Math.Exp(z[r * V + first + i] - lse[r]));
                    Assert.That(got[r * slice + i], Is.EqualTo(want).Within(Math.Abs(want) * 8e-3 + 1e-7), $"row {r} column {first + i}");
                }
        }
    }
}
