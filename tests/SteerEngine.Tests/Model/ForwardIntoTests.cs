using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

/// <summary>Forward into the caller's logits buffers: the same numbers as Forward, checked buffers, no logits allocated per step.</summary>
[TestFixture]
public class ForwardIntoTests
{
    static IEnumerable<CpuKernelChoice> Choices() => FastPathTests.FastChoices().Prepend(CpuKernelChoice.Exact);

    static List<ForwardSequence> Batch(Transformer model, int[][] tokens, bool[] allLogits, float[] vector) =>
        tokens.Select((t, i) => new ForwardSequence(model.NewCache(), t,
            i == 1 ? new SequenceSteering([new SteeringAdd(1, vector, 2.5f)], t.Length) : null, allLogits[i])).ToList();

    [Test]
    public void Into_buffers_gives_the_same_logits_as_Forward([ValueSource(nameof(Choices))] CpuKernelChoice kernels)
    {
        using var model = Transformer.Load(TestModels.Get("tiny"), kernels);
        var rng = new Random(12);
        int[][] tokens = [Compare.RandomTokens(rng, 5, 128000), Compare.RandomTokens(rng, 1, 128000), Compare.RandomTokens(rng, 9, 128000)];
        bool[] allLogits = [false, false, true];
        float[] vector = Compare.RandomVector(rng, model.Config.HiddenSize);

        float[][] expected = model.Forward(Batch(model, tokens, allLogits, vector));
        var batch = Batch(model, tokens, allLogits, vector);
        float[][] into = LogitBuffers.Allocate(batch, model.Config.VocabSize);
        foreach (float[] b in into) b.AsSpan().Fill(float.NaN);
        model.ForwardInto(batch, into);
        for (int s = 0; s < tokens.Length; s++)
            Assert.That(into[s], Is.EqualTo(expected[s]), $"sequence {s}");

        // One sequence alone takes the path that writes its buffer directly.
        float[] alone = model.Forward([new ForwardSequence(model.NewCache(), tokens[2], null, true)])[0];
        float[][] aloneInto = [new float[9 * model.Config.VocabSize]];
        model.ForwardInto([new ForwardSequence(model.NewCache(), tokens[2], null, true)], aloneInto);
        Assert.That(aloneInto[0], Is.EqualTo(alone));
    }

    [Test]
    public void Wrong_buffers_are_refused_before_any_cache_changes()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"), CpuKernelChoice.Managed);
        int V = model.Config.VocabSize;
        KvCache cache = model.NewCache();
        model.Forward([new ForwardSequence(cache, [1, 2, 3])]);
        float[] before = cache.Keys(0, 3).ToArray();

        var step = new List<ForwardSequence> { new(cache, [4]), new(model.NewCache(), [5, 6], allLogits: true) };
        float[][][] wrong = [[new float[V]], [new float[V], new float[V]], [new float[V + 1], new float[2 * V]], [new float[V], null!]];
        foreach (float[][] buffers in wrong)
        {
            var e = Assert.Throws<ArgumentException>(() => model.ForwardInto(step, buffers));
            Assert.That(e!.Message, Does.Contain("logits"));
        }
        Assert.That(cache.Length, Is.EqualTo(3));
        Assert.That(step[1].Cache.Length, Is.EqualTo(0));
        Assert.That(cache.Keys(0, 3).ToArray(), Is.EqualTo(before));
    }

    [Test]
    public void A_decode_step_into_kept_buffers_allocates_no_logits([ValueSource(nameof(Choices))] CpuKernelChoice kernels)
    {
        using var model = Transformer.Load(TestModels.Get("tiny"), kernels);
        int V = model.Config.VocabSize, steps = 8;
        var rng = new Random(3);
        float[] vector = Compare.RandomVector(rng, model.Config.HiddenSize);
        var caches = Enumerable.Range(0, 4).Select(_ => model.NewCache(64)).ToList();
        model.Forward(caches.Select(c => new ForwardSequence(c, Compare.RandomTokens(rng, 7, 128000))).ToList());
        var batch = caches.Select((c, i) => new ForwardSequence(c, [10 + i], new SequenceSteering([new SteeringAdd(1, vector, i)], 7))).ToList();
        float[][] logits = LogitBuffers.Allocate(batch, V);
        model.ForwardInto(batch, logits); // warms the workspace up

        long before = GC.GetTotalAllocatedBytes(precise: true);
        for (int s = 0; s < steps; s++) model.ForwardInto(batch, logits);
        long perStep = (GC.GetTotalAllocatedBytes(precise: true) - before) / steps;
        TestContext.Out.WriteLine($"{model.Kernels}: {perStep} bytes allocated per decode step of 4 (one logits row is {4L * V})");
        Assert.That(perStep, Is.LessThan(V), "a decode step allocated about a logits row or more");
    }
}
