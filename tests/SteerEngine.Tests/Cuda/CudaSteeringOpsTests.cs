using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Every steering operation at the block output, and operations at the attention residual add
/// (resid_mid), on the CUDA backend (native/cuemu) against the CPU backend, in one batch with a plain
/// add and an unsteered row, through prefill and decode.
/// </summary>
[TestFixture]
public class CudaSteeringOpsTests
{
    const double Bf16Tolerance = 2e-2;

    [Test]
    public void A_batch_mixing_every_operation_matches_the_cpu_backend()
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.Get("tiny");
        using IForwardModel cpu = Backends.Create("cpu", dir);
        using IForwardModel gpu = Backends.Create("cuda-emu", dir, 1);
        ModelConfig c = cpu.Config;
        var rng = new Random(31);
        int[][] prompts = [.. new[] { 9, 15, 5, 12, 7, 20, 3, 11 }.Select(n => Compare.RandomTokens(rng, n, 128000))];

        // The projection ops act along the first prompt's own state after block 1, where they bite.
        var sink = new HiddenStateRecorder(c.NumLayers + 1, c.HiddenSize);
        float[][] unsteered = cpu.Forward(prompts.Select(p => new ForwardSequence(cpu.NewCache(), p, null, allLogits: true)).ToList(), sink);
        float[] direction = sink.Get(2, 0)[^c.HiddenSize..];
        float along = MathF.Sqrt(direction.Sum(e => e * e));
        float[] vector = Compare.RandomVector(rng, c.HiddenSize, 0.5f);
        SequenceSteering Row(params SteeringAdd[] adds) => new(adds, 1000);
        SequenceSteering?[] steering =
        [
            Row(new SteeringAdd(1, vector, 6f) { Op = SteeringOp.AddNormalized }),
            Row(new SteeringAdd(1, direction, 0f) { Op = SteeringOp.Ablate }),
            Row(new SteeringAdd(1, direction, 0f) { Op = SteeringOp.Cap, Lo = 0.5f * along, Hi = float.PositiveInfinity }),
            Row(new SteeringAdd(1, direction, 0f) { Op = SteeringOp.Set, Value = -along }),
            Row(new SteeringAdd(1, direction, 0f) { Op = SteeringOp.Ablate }, new SteeringAdd(1, vector, 4f),
                new SteeringAdd(1, vector, 0f) { Op = SteeringOp.Cap, Lo = float.NegativeInfinity, Hi = 0.5f },
                new SteeringAdd(2, vector, -3f) { Op = SteeringOp.AddNormalized }),
            Row(new SteeringAdd(1, vector, 4f)),
            null,
            Row(new SteeringAdd(1, vector, 4f) { Hook = SteeringHook.ResidMid }, new SteeringAdd(1, vector, -2f),
                new SteeringAdd(2, direction, 0f) { Op = SteeringOp.Set, Value = along, Hook = SteeringHook.ResidMid }),
        ];

        KvCache[] cpuCaches = prompts.Select(_ => cpu.NewCache()).ToArray(), gpuCaches = prompts.Select(_ => gpu.NewCache()).ToArray();
        float[][] expected = cpu.Forward(prompts.Select((p, s) => new ForwardSequence(cpuCaches[s], p, steering[s], allLogits: true)).ToList());
        float[][] actual = gpu.Forward(prompts.Select((p, s) => new ForwardSequence(gpuCaches[s], p, steering[s], allLogits: true)).ToList());
        for (int s = 0; s < prompts.Length; s++)
        {
            Assert.That(Compare.RelativeMaxError(actual[s], expected[s]), Is.LessThan(Bf16Tolerance), $"prefill logits of row {s}");
            // The comparison can tell an operation from none at all.
            if (steering[s] is not null)
                Assert.That(Compare.RelativeMaxError(unsteered[s], expected[s]), Is.GreaterThan(Bf16Tolerance), $"row {s} is steered");
        }

        for (int step = 0; step < 2; step++)
        {
            int[][] next = prompts.Select(_ => new[] { rng.Next(128000) }).ToArray();
            expected = cpu.Forward(next.Select((t, s) => new ForwardSequence(cpuCaches[s], t, steering[s])).ToList());
            actual = gpu.Forward(next.Select((t, s) => new ForwardSequence(gpuCaches[s], t, steering[s])).ToList());
            for (int s = 0; s < prompts.Length; s++)
                Assert.That(Compare.RelativeMaxError(actual[s], expected[s]), Is.LessThan(Bf16Tolerance), $"decode step {step}, row {s}");
        }
    }
}
