using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>The C# CUDA backend end to end on native/cuemu against the CPU path, on the tiny model.</summary>
[TestFixture]
public class CudaEmuEndToEndTests
{
    const double Bf16Tolerance = 2e-2;

    static IForwardModel Emulated(string dir, int tp)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        return Backends.Create("cuda-emu", dir, tp);
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Steered_logits_and_captured_states_match_the_cpu_backend(int tp)
    {
        string dir = TestModels.Get("tiny");
        using IForwardModel cpu = Backends.Create("cpu", dir);
        using IForwardModel gpu = Emulated(dir, tp);
        ModelConfig c = cpu.Config;
        var rng = new Random(5);
        int[][] prompts = [Compare.RandomTokens(rng, 23, 128000), Compare.RandomTokens(rng, 70, 128000), Compare.RandomTokens(rng, 1, 128000)];
        // Each row of the batch its own steering: two multipliers of one vector, a response-only add at another layer, none.
        float[] vector = Compare.RandomVector(rng, c.HiddenSize, 0.5f);
        SequenceSteering?[] steering =
        [
            new SequenceSteering([new SteeringAdd(1, vector, 4f), new SteeringAdd(2, Compare.RandomVector(rng, c.HiddenSize), 2f, SteeringPositions.Response)], 23),
            new SequenceSteering([new SteeringAdd(1, vector, -3f)], 70),
            null,
        ];

        var cpuSink = new HiddenStateRecorder(c.NumLayers + 1, c.HiddenSize);
        var gpuSink = new HiddenStateRecorder(c.NumLayers + 1, c.HiddenSize);
        KvCache[] cpuCaches = prompts.Select(_ => cpu.NewCache()).ToArray(), gpuCaches = prompts.Select(_ => gpu.NewCache()).ToArray();
        float[][] expected = cpu.Forward(prompts.Select((p, s) => new ForwardSequence(cpuCaches[s], p, steering[s], allLogits: true)).ToList(), cpuSink);
        float[][] actual = gpu.Forward(prompts.Select((p, s) => new ForwardSequence(gpuCaches[s], p, steering[s], allLogits: true)).ToList(), gpuSink);
        for (int s = 0; s < prompts.Length; s++)
        {
            Assert.That(Compare.RelativeMaxError(actual[s], expected[s]), Is.LessThan(Bf16Tolerance), $"prefill logits of sequence {s}");
            for (int e = 0; e <= c.NumLayers; e++)
                Assert.That(Compare.RelativeMaxError(gpuSink.Get(e, s), cpuSink.Get(e, s)), Is.LessThan(Bf16Tolerance), $"hidden state entry {e}, sequence {s}");
        }

        // Two decode steps continue from the device caches (split-KV attention path).
        for (int step = 0; step < 2; step++)
        {
            int[][] next = prompts.Select(_ => new[] { rng.Next(128000) }).ToArray();
            expected = cpu.Forward(next.Select((t, s) => new ForwardSequence(cpuCaches[s], t, steering[s])).ToList());
            actual = gpu.Forward(next.Select((t, s) => new ForwardSequence(gpuCaches[s], t, steering[s])).ToList());
            for (int s = 0; s < prompts.Length; s++)
                Assert.That(Compare.RelativeMaxError(actual[s], expected[s]), Is.LessThan(Bf16Tolerance), $"decode step {step}, sequence {s}");
        }
        Assert.That(gpuCaches.Select(k => k.Length), Is.EqualTo(cpuCaches.Select(k => k.Length)));
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Greedy_generation_equals_the_cpu_backend_for_16_tokens(int tp)
    {
        string dir = TestModels.Get("tiny");
        using IForwardModel cpu = Backends.Create("cpu", dir);
        using IForwardModel gpu = Emulated(dir, tp);
        var steering = new SequenceSteering([new SteeringAdd(2, Compare.RandomVector(new Random(12), cpu.Config.HiddenSize), 3f)], 12);
        // A random model's logits have near-ties (gaps of 1e-3 among 128k tokens) that no bf16 path
        // can be expected to break the same way as f32. The prompt is the first one whose reference
        // run has no step with a top-2 gap below MinGap (bf16 rounding moves these logits by ~1e-2).
        const float MinGap = 0.05f;
        for (int seed = 11; ; seed++)
        {
            Assert.That(seed, Is.LessThan(60), "no prompt without near-ties found");
            int[] prompt = Compare.RandomTokens(new Random(seed), 12, 128000);
            (int[] expected, float gap) = Greedy(cpu, prompt, steering, 16);
            if (gap < MinGap) continue;
            Assert.That(Greedy(gpu, prompt, steering, 16).Tokens, Is.EqualTo(expected), $"prompt seed {seed}");
            return;
        }
    }

    /// <returns>the greedy tokens and the smallest gap between the two largest logits on the way</returns>
    static (int[] Tokens, float MinGap) Greedy(IForwardModel model, int[] prompt, SequenceSteering steering, int count)
    {
        KvCache cache = model.NewCache(4);
        var output = new List<int>();
        float minGap = float.PositiveInfinity;
        float[] logits = model.Forward([new ForwardSequence(cache, prompt, steering)])[0];
        for (int i = 0; i < count; i++)
        {
            int best = Sampler.ArgMax(logits);
            float second = float.NegativeInfinity;
            for (int t = 0; t < logits.Length; t++) if (t != best) second = Math.Max(second, logits[t]);
            minGap = Math.Min(minGap, logits[best] - second);
            output.Add(best);
            if (i + 1 < count) logits = model.Forward([new ForwardSequence(cache, [best], steering)])[0];
        }
        return (output.ToArray(), minGap);
    }

    [Test]
    public void A_cache_filled_by_another_backend_is_rejected()
    {
        string dir = TestModels.Get("tiny");
        using IForwardModel cpu = Backends.Create("cpu", dir);
        using IForwardModel gpu = Emulated(dir, 1);
        KvCache cache = cpu.NewCache();
        cpu.Forward([new ForwardSequence(cache, [1, 2, 3])]);
        Assert.That(() => gpu.Forward([new ForwardSequence(cache, [4])]), Throws.ArgumentException.With.Message.Contains("another backend"));
    }
}
