using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

/// <summary>The whole model on the fast kernels against the exact f32 path (DESIGN.md §4: bf16 paths ≤ 2e-2).</summary>
[TestFixture]
public class FastPathTests
{
    internal static IEnumerable<CpuKernelChoice> FastChoices()
    {
        yield return CpuKernelChoice.Managed;
        if (NativeCpu.IsAvailable) yield return CpuKernelChoice.Native;
    }

    static float[][] Run(Transformer model, int[][] seqs, SequenceSteering?[] steering) =>
        model.Forward(seqs.Select((s, i) => new ForwardSequence(model.NewCache(), s, steering[i], allLogits: true)).ToList());

    [Test]
    public void Native_library_is_built_here() =>
        Assert.That(NativeCpu.IsAvailable, Is.True, "libsteer_cpu did not load: ./build.sh builds it into out/native-cpu");

    [Test]
    public void Fast_paths_match_the_exact_path_within_bf16_tolerance([Values("tiny", "qwen3-tiny")] string shape, [ValueSource(nameof(FastChoices))] CpuKernelChoice kernels)
    {
        string dir = TestModels.Get(shape);
        using var exact = Transformer.Load(dir, CpuKernelChoice.Exact);
        using var fast = Transformer.Load(dir, kernels);
        var rng = new Random(31);
        int[][] seqs = [Compare.RandomTokens(rng, 3, 128000), Compare.RandomTokens(rng, 37, 128000), Compare.RandomTokens(rng, 11, 128000)];
        float[] vector = Compare.RandomVector(rng, exact.Config.HiddenSize);
        SequenceSteering?[] steering = [new SequenceSteering([new SteeringAdd(1, vector, 3f, SteeringPositions.Response)], 2), null,
            new SequenceSteering([new SteeringAdd(0, vector, -2f), new SteeringAdd(2, vector, 1.5f, SteeringPositions.Prompt)], 6)];
        float[][] a = Run(exact, seqs, steering), b = Run(fast, seqs, steering);
        for (int i = 0; i < seqs.Length; i++)
            Assert.That(Compare.RelativeMaxError(b[i], a[i]), Is.LessThanOrEqualTo(2e-2), $"sequence {i} on {fast.Kernels}");
    }

    [Test]
    public void Native_and_managed_paths_agree_closely()
    {
        if (!NativeCpu.IsAvailable) Assert.Ignore("libsteer_cpu not built: run ./build.sh");
        string dir = TestModels.Get("tiny");
        using var native = Transformer.Load(dir, CpuKernelChoice.Native);
        using var managed = Transformer.Load(dir, CpuKernelChoice.Managed);
        int[][] seqs = [Compare.RandomTokens(new Random(2), 25, 128000)];
        float[][] a = Run(native, seqs, [null]), b = Run(managed, seqs, [null]);
        // Both round activations to bf16 before each product; a last-bit difference can flip one rounding, so agreement is bf16-close, not f32-close.
        Assert.That(Compare.RelativeMaxError(a[0], b[0]), Is.LessThanOrEqualTo(1e-2));
    }

    [Test]
    public void On_the_fast_path_a_sampled_sequence_is_the_same_alone_and_in_a_batch([ValueSource(nameof(FastChoices))] CpuKernelChoice kernels)
    {
        using var model = Transformer.Load(TestModels.Get("tiny"), kernels);
        var rng = new Random(6);
        var sampling = new SamplingOptions(1f);
        var target = new GenerationRequest(Compare.RandomTokens(rng, 9, 128000), 16, sampling, Seed: 5);
        var others = Enumerable.Range(0, 11).Select(i => new GenerationRequest(Compare.RandomTokens(rng, 3 + 5 * i, 128000), 4 + i, sampling,
            [new SteeringAdd(2, Compare.RandomVector(rng, 128), i)], Seed: (ulong)i + 100)).ToList();
        var alone = new Generator(model).Generate([target])[0];
        var batched = new Generator(model).Generate([.. others.Take(6), target, .. others.Skip(6)])[6];
        Assert.That(batched.Tokens, Is.EqualTo(alone.Tokens));
    }
}
