using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Every kernel of kernels/*.cu run on native/cuemu against its CPU reference (Runtime/Cpu,
/// Generation/Sampler), on random inputs at shapes that are not multiples of the tiles.
/// </summary>
[TestFixture]
public partial class KernelTests
{
    CudaDevice _d = null!;
    readonly Random _rng = new(1234);

    [SetUp] public void Open() => _d = Emulator.UnderTest();
    [TearDown] public void Close() => _d?.Dispose();

    float[] Random(int n, float scale = 1f) => Compare.RandomVector(_rng, n, scale);
    static ushort[] Bf16(float[] x) => x.Select(DeviceWeights.ToBf16).ToArray();
    static float[] F32(ushort[] x) => x.Select(DeviceWeights.FromBf16).ToArray();
    static float[] RoundBf16(float[] x) => F32(Bf16(x));
    DevicePtr Up<T>(T[] x) where T : unmanaged => _d.AllocUpload<T>(x);
    T[] Down<T>(DevicePtr p, int n) where T : unmanaged { var r = new T[n]; _d.Download<T>(p, r); return r; }
    DevicePtr Zeros(long bytes) { DevicePtr p = _d.Alloc(bytes); _d.Zero(p, bytes); return p; }

    [Test]
    public void Mma_fragments_follow_the_ptx_layout_and_multiply()
    {
        float[] a = RoundBf16(Random(16 * 16)), b = RoundBf16(Random(16 * 8)), c = Random(16 * 8);
        DevicePtr d = Zeros(16 * 8 * 4);
        _d.Launch("mma_probe", new Dim3(1), new Dim3(32), Up(Bf16(a)), Up(Bf16(b)), Up(c), d);
        float[] got = Down<float>(d, 16 * 8), want = new float[16 * 8];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double s = c[i * 8 + j];
                for (int k = 0; k < 16; k++) s += (double)a[i * 16 + k] * b[k * 8 + j];
                want[i * 8 + j] = (float)s;
            }
        Assert.That(Compare.RelativeMaxError(got, want), Is.LessThan(1e-6));
    }

    [Test]
    public void Rmsnorm_matches_the_cpu_reference_in_f32_and_bf16()
    {
        const int rows = 7, n = 200;
        float[] x = Random(rows * n, 3f), w = Random(n), want = new float[rows * n];
        RmsNorm.Forward(x, w, want, rows, 1e-5f);
        DevicePtr y32 = Zeros(rows * n * 4), y16 = Zeros(rows * n * 2);
        _d.Launch("rmsnorm", new Dim3(rows), new Dim3(64), Up(x), Up(w), y32, y16, n, 1e-5f);
        Assert.That(Compare.RelativeMaxError(Down<float>(y32, rows * n), want), Is.LessThan(1e-5));
        Assert.That(Compare.RelativeMaxError(F32(Down<ushort>(y16, rows * n)), want), Is.LessThan(4e-3));
    }

    [Test]
    public void Embedding_and_row_gathers_copy_the_right_rows()
    {
        const int vocab = 37, hidden = 45;
        float[] table = RoundBf16(Random(vocab * hidden));
        int[] tokens = [36, 0, 5, 5, 17];
        DevicePtr x = Zeros(tokens.Length * hidden * 4), picked = Zeros(2 * hidden * 2);
        _d.Launch("embedding_gather", new Dim3((uint)tokens.Length), new Dim3(32), Up(Bf16(table)), Up(tokens), x, hidden);
        float[] got = Down<float>(x, tokens.Length * hidden);
        for (int r = 0; r < tokens.Length; r++)
            Assert.That(got.AsSpan(r * hidden, hidden).ToArray(), Is.EqualTo(table.AsSpan(tokens[r] * hidden, hidden).ToArray()));
        _d.Launch("gather_rows_bf16", new Dim3(2), new Dim3(32), Up(Bf16(table)), Up(new[] { 3, 30 }), picked, hidden);
        Assert.That(F32(Down<ushort>(picked, 2 * hidden)), Is.EqualTo(table.AsSpan(3 * hidden, hidden).ToArray().Concat(table.AsSpan(30 * hidden, hidden).ToArray())));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Rope_with_llama3_scaling_and_head_norm_matches_the_cpu_reference_and_fills_the_cache(bool headNorm)
    {
        ModelConfig c = ModelShapes.Get("tiny"); // hd 32, llama3 scaling with a 64-token original context
        int nh = 4, nkv = 2, hd = c.HeadDim, qd = nh * hd, kvd = nkv * hd, T = 5, layers = 2, layer = 1, cap = 6000;
        int[] positions = [0, 3, 61, 700, 5999];
        float[] qkv = Random(T * (qd + 2 * kvd), 2f), qn = Random(hd), kn = Random(hd);
        float[] invFreq = Rope.InverseFrequencies(hd, c.RopeTheta, c.RopeScaling);
        DevicePtr qOut = Zeros(T * qd * 2), cache = Zeros((long)layers * 2 * cap * kvd * 2);
        _d.Launch("qk_norm_rope", new Dim3((uint)T), new Dim3(64), Up(qkv), Up(invFreq), Up(positions), Up(new int[T]),
            headNorm ? Up(qn) : DevicePtr.Null, headNorm ? Up(kn) : DevicePtr.Null, 1e-6f, qOut,
            Up(new[] { cache.Address }), Up(new[] { 0, cap }), layer, nh, nkv, hd);

        var rope = new Rope(c);
        float[] gotQ = F32(Down<ushort>(qOut, T * qd));
        float[] cacheAll = F32(Down<ushort>(cache, layers * 2 * cap * kvd));
        for (int r = 0; r < T; r++)
        {
            float[] row = qkv.AsSpan(r * (qd + 2 * kvd), qd + 2 * kvd).ToArray();
            float[] q = row[..qd], k = row[qd..(qd + kvd)], v = row[(qd + kvd)..];
            if (headNorm)
            {
                RmsNorm.Forward(q, qn, q, nh, 1e-6f);
                RmsNorm.Forward(k, kn, k, nkv, 1e-6f);
            }
            rope.Apply(q, nh, positions[r]);
            rope.Apply(k, nkv, positions[r]);
            long kAt = ((long)layer * 2 * cap + positions[r]) * kvd, vAt = ((long)(layer * 2 + 1) * cap + positions[r]) * kvd;
            Assert.That(Compare.RelativeMaxError(gotQ.AsSpan(r * qd, qd), q), Is.LessThan(5e-3), $"q row {r}");
            Assert.That(Compare.RelativeMaxError(cacheAll.AsSpan((int)kAt, kvd), k), Is.LessThan(5e-3), $"k row {r}");
            Assert.That(Compare.RelativeMaxError(cacheAll.AsSpan((int)vAt, kvd), v), Is.LessThan(5e-3), $"v row {r}");
        }
    }

    /// <summary>A sequence's cache for one layer of a (layers, 2, cap, kvd) bf16 buffer, filled with random rows.</summary>
    (DevicePtr Base, float[] K, float[] V) RandomCache(int layers, int layer, int cap, int len, int kvd)
    {
        float[] k = RoundBf16(Random(len * kvd)), v = RoundBf16(Random(len * kvd));
        var all = new ushort[(long)layers * 2 * cap * kvd];
        Bf16(k).CopyTo(all, (long)layer * 2 * cap * kvd);
        Bf16(v).CopyTo(all, (long)(layer * 2 + 1) * cap * kvd);
        return (Up(all), k, v);
    }

    [TestCase(32)]
    [TestCase(64)]
    [TestCase(128)]
    public void Prefill_attention_on_tensor_cores_matches_the_cpu_reference(int hd)
    {
        int nh = 4, nkv = 2, qd = nh * hd, kvd = nkv * hd, layers = 2, layer = 1;
        (int Start, int N)[] seqs = [(0, 45), (13, 17), (5, 1), (70, 66)]; // rows not multiples of 16 or 64
        int T = seqs.Sum(s => s.N);
        float[] q = RoundBf16(Random(T * qd, 2f));
        var caches = seqs.Select(s => RandomCache(layers, layer, s.Start + s.N + 3, s.Start + s.N, kvd)).ToArray();
        int[] rowStart = seqs.Select((_, i) => seqs.Take(i).Sum(s => s.N)).ToArray();
        DevicePtr output = Zeros(T * qd * 2);
        _d.Launch($"attention_prefill_hd{hd}", new Dim3((uint)((seqs.Max(s => s.N) + 63) / 64), (uint)nh, (uint)seqs.Length), new Dim3(128),
            Up(Bf16(q)), output, Up(rowStart), Up(seqs.Select(s => s.N).ToArray()), Up(seqs.Select(s => s.Start).ToArray()),
            Up(caches.Select(x => x.Base.Address).ToArray()), Up(seqs.SelectMany((s, i) => new[] { i, s.Start + s.N + 3 }).ToArray()), layer, nh, nkv, 1f / MathF.Sqrt(hd));
        float[] got = F32(Down<ushort>(output, T * qd));
        for (int s = 0; s < seqs.Length; s++)
        {
            var want = new float[seqs[s].N * qd];
            Attention.Forward(q.AsSpan(rowStart[s] * qd, seqs[s].N * qd), caches[s].K, caches[s].V, want, seqs[s].N, seqs[s].Start, nh, nkv, hd);
            Assert.That(Compare.RelativeMaxError(got.AsSpan(rowStart[s] * qd, seqs[s].N * qd), want), Is.LessThan(2e-2), $"sequence {s}");
        }
    }

    // (head dim, query heads, KV heads, keys per split): GQA groups of 1, 2, 4 and 8, odd chunk sizes.
    [TestCase(32, 4, 1, 256)]
    [TestCase(64, 8, 2, 100)]
    [TestCase(128, 8, 1, 37)]
    [TestCase(32, 2, 2, 61)]
    [TestCase(128, 4, 2, 256)]
    public void Flash_decoding_attention_matches_the_cpu_reference(int hd, int nh, int nkv, int chunk)
    {
        int qd = nh * hd, kvd = nkv * hd, layers = 2, layer = 1;
        int[] positions = [0, 300, 700, 255, 3]; // one to several splits, a chunk boundary, shorter rows beside longer ones
        int T = positions.Length, splits = (positions.Max() + chunk) / chunk;
        float[] q = RoundBf16(Random(T * qd, 2f));
        var caches = positions.Select(p => RandomCache(layers, layer, p + 4, p + 1, kvd)).ToArray();
        DevicePtr partO = Zeros((long)T * nh * splits * hd * 4), partMl = Zeros((long)T * nh * splits * 2 * 4), output = Zeros(T * qd * 2);
        _d.Launch($"attention_decode_hd{hd}", new Dim3((uint)splits, (uint)nkv, (uint)T), new Dim3(128), Up(Bf16(q)),
            Up(Enumerable.Range(0, T).ToArray()), Up(positions), Up(caches.Select(x => x.Base.Address).ToArray()),
            Up(positions.SelectMany((p, i) => new[] { i, p + 4 }).ToArray()), layer, nh, nkv, 1f / MathF.Sqrt(hd), chunk, partO, partMl);
        _d.Launch("attention_decode_combine", new Dim3((uint)nh, (uint)T), new Dim3(32), partO, partMl, splits, hd, output);
        float[] got = F32(Down<ushort>(output, T * qd));
        for (int r = 0; r < T; r++)
        {
            var want = new float[qd];
            Attention.Forward(q.AsSpan(r * qd, qd), caches[r].K, caches[r].V, want, 1, positions[r], nh, nkv, hd);
            Assert.That(Compare.RelativeMaxError(got.AsSpan(r * qd, qd), want), Is.LessThan(1e-2), $"row at position {positions[r]}");
        }
    }

    [Test]
    public void Residual_add_steers_each_row_with_its_own_adds_and_projects_the_result()
    {
        const int T = 9, H = 200;
        float[] x = Random(T * H), delta = Random(T * H), v0 = Random(H), v1 = Random(H), dirs = Random(2 * H);
        // Rows 0-2 steered +4·v0, rows 3-5 −2·v0 + 0.5·v1, the rest not at all.
        SequenceSteering a = new([new SteeringAdd(0, v0, 4f)], 3), b = new([new SteeringAdd(0, v0, -2f), new SteeringAdd(0, v1, 0.5f)], 3);
        SequenceSteering?[] rows = [a, a, a, b, b, b, null, null, null];
        int[] start = [0, 1, 2, 3, 5, 7, 9, 9, 9, 9], vec = [0, 0, 0, 0, 1, 0, 1, 0, 1];
        float[] mult = [4f, 4f, 4f, -2f, 0.5f, -2f, 0.5f, -2f, 0.5f];
        var vectors = v0.Concat(v1).ToArray();
        DevicePtr dx = Up(x), proj = Zeros(T * 2 * 4);
        _d.Launch("residual_add_steer", new Dim3(T), new Dim3(64), dx, Up(delta), H, Up(start), Up(vec), Up(mult), DevicePtr.Null, DevicePtr.Null, Up(vectors), Up(dirs), 2, proj);

        float[] want = (float[])x.Clone();
        ResidualAdd.ForwardSteered(want, delta, H, 0, SteeringHook.ResidPost, rows, Enumerable.Range(0, T).ToArray());
        float[] got = Down<float>(dx, T * H);
        Assert.That(Compare.RelativeMaxError(got, want), Is.LessThan(1e-6));
        float[] projections = Down<float>(proj, T * 2);
        for (int r = 0; r < T; r++)
            for (int d = 0; d < 2; d++)
            {
                double dot = 0;
                for (int i = 0; i < H; i++) dot += (double)want[r * H + i] * dirs[d * H + i];
                Assert.That(projections[r * 2 + d], Is.EqualTo(dot).Within(1e-4 * Math.Max(1, Math.Abs(dot))));
            }
    }

    /// <summary>
    /// The per-row entry tables the steering kernels read: row r's entries are Start[r] .. Start[r+1]-1, each with its
    /// vector's index in <paramref name="vectors"/>, multiplier, op, clamp bounds (E, 2) and the columns it acts on (E, 2).
    /// </summary>
    static (int[] Start, int[] Vector, float[] Multiplier, int[] Op, float[] Bounds, int[] Slice) SteeringEntries(SequenceSteering?[] rows, float[][] vectors)
    {
        var start = new List<int> { 0 };
        var vec = new List<int>();
        var mult = new List<float>();
        var op = new List<int>();
        var bounds = new List<float>();
        var slice = new List<int>();
        foreach (SequenceSteering? row in rows)
        {
            foreach (SteeringAdd a in row?.Adds ?? [])
            {
                vec.Add(Array.IndexOf(vectors, a.Vector));
                mult.Add(a.Multiplier);
                op.Add((int)a.Op);
                bounds.AddRange([a.ProjectionBounds.Lo, a.ProjectionBounds.Hi]);
                slice.AddRange([a.Slice.Offset, a.Slice.Count]);
            }
            start.Add(vec.Count);
        }
        return ([.. start], [.. vec], [.. mult], [.. op], [.. bounds], [.. slice]);
    }

    [Test]
    public void Residual_add_applies_each_steering_operation_as_the_cpu_reference()
    {
        const int T = 7, H = 200;
        float[] x = Random(T * H), delta = Random(T * H), v0 = Random(H), v1 = Random(H, 0.3f);
        SequenceSteering Row(params SteeringAdd[] adds) => new(adds, 1);
        // One row per operation, one composing three in order, a plain add, and an unsteered row.
        SequenceSteering?[] rows =
        [
            Row(new SteeringAdd(0, v0, 3f) { Op = SteeringOp.AddNormalized }),
            Row(new SteeringAdd(0, v1, 0f) { Op = SteeringOp.Ablate }),
            Row(new SteeringAdd(0, v0, 0f) { Op = SteeringOp.Cap, Lo = -0.5f, Hi = 0.5f }),
            Row(new SteeringAdd(0, v1, 0f) { Op = SteeringOp.Set, Value = 3f }),
            Row(new SteeringAdd(0, v0, 0f) { Op = SteeringOp.Ablate }, new SteeringAdd(0, v1, 2f),
                new SteeringAdd(0, v1, 0f) { Op = SteeringOp.Cap, Lo = float.NegativeInfinity, Hi = 1f }),
            Row(new SteeringAdd(0, v0, -2f)),
            null,
        ];
        var e = SteeringEntries(rows, [v0, v1]);
        DevicePtr dx = Up(x);
        _d.Launch("residual_add_steer", new Dim3(T), new Dim3(64), dx, Up(delta), H, Up(e.Start), Up(e.Vector),
            Up(e.Multiplier), Up(e.Op), Up(e.Bounds), Up(v0.Concat(v1).ToArray()), DevicePtr.Null, 0, DevicePtr.Null);

        float[] want = (float[])x.Clone();
        ResidualAdd.ForwardSteered(want, delta, H, 0, SteeringHook.ResidPost, rows, Enumerable.Range(0, T).ToArray());
        float[] got = Down<float>(dx, T * H);
        for (int r = 0; r < T; r++)
            Assert.That(Compare.RelativeMaxError(got.AsSpan(r * H, H), want.AsSpan(r * H, H)), Is.LessThan(1e-5), $"row {r}");
        // The projection ops took effect: row 1 has no component along v1, row 3 projects to 3 on it.
        double Along(int r, float[] v) => Enumerable.Range(0, H).Sum(i => (double)got[r * H + i] * v[i]) / Math.Sqrt(v.Sum(e => (double)e * e));
        Assert.That(Along(1, v1), Is.EqualTo(0).Within(1e-4));
        Assert.That(Along(3, v1), Is.EqualTo(3).Within(1e-4));
    }

    [Test]
    public void Swiglu_matches_the_cpu_reference()
    {
        const int T = 3, I = 345;
        float[] gu = Random(T * 2 * I, 4f);
        DevicePtr output = Zeros(T * I * 2);
        _d.Launch("swiglu", new Dim3(T), new Dim3(96), Up(gu), output, I);
        float[] gate = new float[T * I], up = new float[T * I];
        for (int r = 0; r < T; r++)
        {
            gu.AsSpan(r * 2 * I, I).CopyTo(gate.AsSpan(r * I));
            gu.AsSpan(r * 2 * I + I, I).CopyTo(up.AsSpan(r * I));
        }
        SwiGlu.Forward(gate, up);
        Assert.That(Compare.RelativeMaxError(F32(Down<ushort>(output, T * I)), gate), Is.LessThan(4e-3));
    }

    [Test]
    public void Log_softmax_gives_the_cpu_logprobs()
    {
        const int rows = 3, V = 1001;
        float[] logits = Random(rows * V, 8f);
        int[] targets = [0, 1000, 517];
        DevicePtr lse = Zeros(rows * 4), lp = Zeros(rows * 4), full = Zeros(rows * V * 4);
        _d.Launch("log_softmax_rows", new Dim3(rows), new Dim3(128), Up(logits), V, Up(targets), lse, lp, full);
        float[] got = Down<float>(lp, rows), all = Down<float>(full, rows * V);
        for (int r = 0; r < rows; r++)
        {
            double want = Sampler.LogProb(logits.AsSpan(r * V, V), targets[r]);
            Assert.That(got[r], Is.EqualTo(want).Within(1e-4));
            Assert.That(all[r * V + 42], Is.EqualTo(Sampler.LogProb(logits.AsSpan(r * V, V), 42)).Within(1e-4));
        }
    }

    [Test]
    public void Sampling_picks_the_token_the_host_sampler_picks_for_the_same_draw()
    {
        const int V = 3001;
        SamplingOptions[] options =
        [
            new(Temperature: 0f), new(Temperature: 0.8f), new(Temperature: 1.3f, TopK: 50), new(Temperature: 0.7f, TopP: 0.9f),
            new(Temperature: 1f, TopK: 200, TopP: 0.5f), new(Temperature: 1f, MinP: 0.05f), new(Temperature: 0.5f, TopK: 1),
        ];
        var cases = (from o in options from u in new[] { 0.0, 0.13, 0.5, 0.77, 0.999 } select (o, u)).ToArray();
        int rows = cases.Length;
        float[] logits = Random(rows * V, 6f);
        logits[3 * V + 10] = logits[3 * V + 11] = 30f; // a tie at the top: the lower id goes first
        DevicePtr tokens = Zeros(rows * 4);
        _d.Launch("sample_rows", new Dim3((uint)rows), new Dim3(256), Up(logits), V,
            Up(cases.Select(c => c.o.Temperature).ToArray()), Up(cases.Select(c => c.o.TopK).ToArray()),
            Up(cases.Select(c => c.o.TopP).ToArray()), Up(cases.Select(c => c.o.MinP).ToArray()),
            Up(cases.Select(c => c.u).ToArray()), tokens, DevicePtr.Null);
        int[] got = Down<int>(tokens, rows);
        for (int r = 0; r < rows; r++)
        {
            int want = Sampler.Sample(logits.AsSpan(r * V, V).ToArray(), cases[r].o, cases[r].u);
            Assert.That(got[r], Is.EqualTo(want), $"{cases[r].o} u={cases[r].u}");
        }
    }

    [Test]
    public void Top_logprobs_are_the_host_top_in_its_order()
    {
        const int rows = 3, V = 2003, K = TokenLogprob.MaxTop;
        float[] logits = Random(rows * V, 6f);
        logits[10] = logits[11] = logits[500] = 40f; // ties at the top: lower ids first
        int[] counts = [5, 20, 1];
        DevicePtr lse = Zeros(rows * 4), ids = Zeros(rows * K * 4), lp = Zeros(rows * K * 4);
        _d.Launch("log_softmax_rows", new Dim3(rows), new Dim3(256), Up(logits), V, DevicePtr.Null, lse, DevicePtr.Null, DevicePtr.Null);
        _d.Launch("top_logprobs_rows", new Dim3(rows), new Dim3(256), Up(logits), V, Up(counts), K, lse, ids, lp);
        int[] gotIds = Down<int>(ids, rows * K);
        float[] gotLp = Down<float>(lp, rows * K);
        for (int r = 0; r < rows; r++)
        {
            TokenLogprob[] want = TokenLogprob.Top(logits.AsSpan(r * V, V), counts[r]);
            for (int j = 0; j < counts[r]; j++)
            {
                Assert.That(gotIds[r * K + j], Is.EqualTo(want[j].Token), $"row {r}, rank {j}");
                Assert.That(gotLp[r * K + j], Is.EqualTo(want[j].Logprob).Within(1e-4), $"row {r}, rank {j}");
            }
        }
    }

    [Test]
    public void Every_kernel_the_backend_launches_is_in_the_emulator()
    {
        string[] launched = ["embedding_gather", "gather_rows_bf16", "rmsnorm", "qk_norm_rope", "residual_add_steer", "swiglu",
            "log_softmax_rows", "sample_rows", "top_logprobs_rows", "attention_decode_combine",
            .. new[] { 32, 64, 128 }.SelectMany(hd => new[] { $"attention_prefill_hd{hd}", $"attention_decode_hd{hd}" })];
        Assert.That(EmulatedCudaDevice.KernelNames(), Is.SupersetOf(launched));
    }
}
