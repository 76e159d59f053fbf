using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Steering at attn.hook_z on the CUDA backend (native/cuemu) against the CPU backend: every operation
/// on the whole row and on one head (one on the last rank's heads), several position modes, mixed with
/// residual terms and an unsteered row, through prefill and graphed decode steps, at TP 1 and TP 2.
/// Under TP 2 the whole-row ops gather the rows across ranks; a batch without attn_z terms launches
/// nothing for them.
/// </summary>
[TestFixture]
public class CudaAttentionSteeringTests
{
    const double Bf16Tolerance = 2e-2;

    /// <summary>Each row's terms (prompt lengths in <paramref name="promptLengths"/>); the last term of every row is one that must bite.</summary>
    static SequenceSteering?[] Rows(ModelConfig c, int[] promptLengths)
    {
        var rng = new Random(61);
        float[] Z(float scale = 0.5f) => Compare.RandomVector(rng, c.QDim, scale);
        float[] Head() => Compare.RandomVector(rng, c.HeadDim, 0.5f);
        float[] residual = Compare.RandomVector(rng, c.HiddenSize, 0.5f), u = Z(), w = Head();
        int last = c.NumHeads - 1; // on the last rank under tensor parallelism
        SteeringAdd At(int layer, float[] vector, float multiplier, SteeringOp op = SteeringOp.Add,
            SteeringPositions positions = SteeringPositions.All, int? head = null) =>
            new(layer, vector, multiplier, positions) { Op = op, Hook = SteeringHook.AttnZ, Head = head, Lo = 2f, Hi = 3f, Value = -3f };
        SteeringAdd[][] terms =
        [
            [At(1, Z(), 6f)],
            [At(1, Z(), 8f, SteeringOp.AddNormalized, SteeringPositions.Prompt)],
            [At(1, u, 6f), At(1, u, 0f, SteeringOp.Ablate, SteeringPositions.Response)],
            [At(2, Z(), 0f, SteeringOp.Cap, SteeringPositions.LastPrompt)],
            [At(0, Z(), 0f, SteeringOp.Set, SteeringPositions.FirstK) with { FirstK = 2 }],
            [At(1, Head(), 8f, positions: SteeringPositions.Tokens, head: 0) with { TokenPositions = [1, 3, promptLengths[5] + 1] }],
            [At(1, Head(), 0f, SteeringOp.Set, head: last)],
            [At(2, w, 8f, head: last), At(2, w, 0f, SteeringOp.Ablate, head: last)],
            [At(1, Head(), 6f, SteeringOp.AddNormalized, head: 1), new SteeringAdd(1, residual, 0f) { Op = SteeringOp.Cap, Hook = SteeringHook.ResidMid, Lo = -0.5f, Hi = 0.5f },
                new SteeringAdd(1, residual, 3f), At(2, Z(), 0f, SteeringOp.Cap, head: null) with { Lo = float.NegativeInfinity, Hi = -2f }],
            [new SteeringAdd(2, residual, 4f)],
            [],
        ];
        return terms.Select((t, i) => t.Length == 0 ? null : new SequenceSteering(t, promptLengths[i])).ToArray();
    }

    static SequenceSteering? WithoutLastTerm(SequenceSteering? s) =>
        s is null || s.Adds.Count == 1 ? null : new SequenceSteering(s.Adds.Take(s.Adds.Count - 1), s.PromptLength);

    [TestCase("tiny", 1)]
    [TestCase("tiny", 2)]
    [TestCase("qwen3-tiny", 1)]
    [TestCase("qwen3-tiny", 2)]
    public void A_batch_mixing_attention_output_terms_matches_the_cpu_backend(string shape, int tp)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.Get(shape);
        using IForwardModel cpu = Backends.Create("cpu", dir);
        using var gpu = CudaTransformer.Load(dir, CudaPlatform.Emulated, tp);
        gpu.DecodeGraphs = true;
        ModelConfig c = cpu.Config;
        var rng = new Random(37);
        int[] lengths = [9, 15, 5, 12, 7, 20, 3, 11, 8, 6, 10];
        int[][] prompts = [.. lengths.Select(n => Compare.RandomTokens(rng, n, 128000))];
        SequenceSteering?[] steering = Rows(c, lengths), fewer = steering.Select(WithoutLastTerm).ToArray();
        int n = prompts.Length;

        // Three pipelines on one schedule: the CUDA backend, the CPU backend, and the CPU backend
        // without each row's last term (which shows that term changes the logits).
        KvCache[] gpuCaches = [.. prompts.Select(_ => gpu.NewCache())], cpuCaches = [.. prompts.Select(_ => cpu.NewCache())],
            fewerCaches = [.. prompts.Select(_ => cpu.NewCache())];
        var bites = new double[n];
        void Step(int[][] tokens, bool allLogits, string what)
        {
            List<ForwardSequence> Batch(KvCache[] caches, SequenceSteering?[] rows) =>
                [.. tokens.Select((t, s) => new ForwardSequence(caches[s], t, rows[s], allLogits))];
            float[][] actual = gpu.Forward(Batch(gpuCaches, steering));
            float[][] expected = cpu.Forward(Batch(cpuCaches, steering));
            float[][] without = cpu.Forward(Batch(fewerCaches, fewer));
            for (int s = 0; s < n; s++)
            {
                Assert.That(Compare.RelativeMaxError(actual[s], expected[s]), Is.LessThan(Bf16Tolerance), $"{what}, row {s}");
                bites[s] = Math.Max(bites[s], Compare.RelativeMaxError(without[s], expected[s]));
            }
        }

        Step(prompts, allLogits: true, "prefill");
        for (int step = 0; step < 3; step++)
            Step([.. prompts.Select(_ => new[] { rng.Next(128000) })], allLogits: false, $"decode step {step}");
        Assert.That(gpu.GraphCounts.Captures, Is.GreaterThan(0), "the decode steps ran as graphs");
        for (int s = 0; s < n; s++)
            if (steering[s] is not null)
                Assert.That(bites[s], Is.GreaterThan(Bf16Tolerance), $"row {s}'s last term changes its logits");
    }

    [Test]
    public void Only_layers_with_attention_output_terms_launch_its_kernels_and_other_rows_keep_their_bits()
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        var devices = new[] { new FaultyDevice(0), new FaultyDevice(1) };
        using CudaTransformer gpu = CudaTransformer.Load(TestModels.Get("tiny"), devices, new EmulatedCollectives(2));
        ModelConfig c = gpu.Config;
        var rng = new Random(5);
        int[] plain = Compare.RandomTokens(rng, 8, 128000), steered = Compare.RandomTokens(rng, 6, 128000);
        float[] z = Compare.RandomVector(rng, c.QDim, 0.5f), h = Compare.RandomVector(rng, c.HiddenSize, 0.5f);
        SteeringAdd AttnZ(int layer, SteeringOp op) => new(layer, z, 4f) { Op = op, Hook = SteeringHook.AttnZ, Lo = -1f, Hi = 1f };

        float[]? reference = null;
        foreach (var (terms, steerLaunches, gatherLaunches) in new (SteeringAdd[]?, int, int)[]
        {
            (null, 0, 0),
            ([new SteeringAdd(1, h, 4f), new SteeringAdd(2, h, 0f) { Op = SteeringOp.Ablate, Hook = SteeringHook.ResidMid }], 0, 0),
            ([AttnZ(1, SteeringOp.Add), AttnZ(1, SteeringOp.Add) with { Head = 1, Vector = z[..c.HeadDim] }], 1, 0),
            ([AttnZ(1, SteeringOp.Add), AttnZ(2, SteeringOp.Cap), AttnZ(3, SteeringOp.Ablate) with { Head = 0, Vector = z[..c.HeadDim] }], 3, 1),
        })
        {
            foreach (FaultyDevice d in devices) d.ResetCounts();
            var steering = terms is null ? null : new SequenceSteering(terms, steered.Length);
            float[][] logits = gpu.Forward([new ForwardSequence(gpu.NewCache(), plain), new ForwardSequence(gpu.NewCache(), steered, steering)]);
            string what = terms is null ? "unsteered" : string.Join(", ", terms.Select(t => $"{t.Hook.Name()} {t.Op.Name()} at {t.Layer}"));
            foreach (FaultyDevice d in devices)
            {
                Assert.That(d.LaunchesOf("attention_steer"), Is.EqualTo(steerLaunches), $"{what}: attention_steer launches on {d.Name}");
                Assert.That(d.LaunchesOf("attention_heads_to_rows"), Is.EqualTo(gatherLaunches), $"{what}: gathers on {d.Name}");
            }
            reference ??= logits[0];
            Assert.That(logits[0], Is.EqualTo(reference), $"{what}: the unsteered row's logits");
        }
    }
}
