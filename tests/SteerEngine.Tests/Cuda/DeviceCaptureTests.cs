using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Capture and monitors reduced on the device (project_rows, the fused residual projection,
/// sum_rows_by_mask) against the same backend's full-state path and the CPU backend, on native/cuemu.
/// </summary>
[TestFixture]
public class DeviceCaptureTests
{
    /// <summary>Forwards a reducing sink that counts how its states arrived.</summary>
    sealed class CountingSink(IReducedStateSink inner) : IReducedStateSink
    {
        public int FullStates, Reduced;
        public void Record(int entry, ReadOnlySpan<float> states, BatchLayout layout) { FullStates++; inner.Record(entry, states, layout); }
        public StateReductions Reductions(BatchLayout layout) => inner.Reductions(layout);
        public void RecordReduced(int entry, ReducedStates reduced, StateReductions plan) { Reduced++; inner.RecordReduced(entry, reduced, plan); }
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Activation_sums_taken_on_the_device_equal_the_full_state_path_and_the_cpu_backend(int tp)
    {
        string dir = TestModels.Get("tiny");
        using CudaTransformer gpu = Emulator.Model(dir, tp);
        using IForwardModel cpu = Backends.Create("cpu", dir);
        ModelConfig c = gpu.Config;
        var rng = new Random(9);
        int[][] texts = [Compare.RandomTokens(rng, 13, c.VocabSize), Compare.RandomTokens(rng, 6, c.VocabSize), Compare.RandomTokens(rng, 21, c.VocabSize)];
        int[] promptLengths = [7, 6, 1];
        ActivationReducer Run(IForwardModel model, bool onDevice, out CountingSink sink)
        {
            if (model is CudaTransformer t) t.DeviceReductions = onDevice;
            var reducer = new ActivationReducer(c.NumLayers + 1, c.HiddenSize, promptLengths);
            sink = new CountingSink(reducer);
            // A prefill in two chunks, then a decode row each: masks over chunked prompts.
            KvCache[] caches = texts.Select(t => model.NewCache(t.Length + 1)).ToArray();
            model.Forward(texts.Select((t, i) => new ForwardSequence(caches[i], t[..(t.Length / 2 + 1)])).ToList(), sink);
            model.Forward(texts.Select((t, i) => new ForwardSequence(caches[i], t[(t.Length / 2 + 1)..])).ToList(), sink);
            model.Forward(texts.Select((t, i) => new ForwardSequence(caches[i], [t[0]])).ToList(), sink);
            return reducer;
        }
        ActivationReducer device = Run(gpu, onDevice: true, out CountingSink deviceSink);
        ActivationReducer host = Run(gpu, onDevice: false, out CountingSink hostSink);
        ActivationReducer reference = Run(cpu, onDevice: false, out _);
        Assert.That((deviceSink.FullStates, deviceSink.Reduced), Is.EqualTo((0, 3 * (c.NumLayers + 1))), "only reductions left the device");
        Assert.That((hostSink.FullStates, hostSink.Reduced), Is.EqualTo((3 * (c.NumLayers + 1), 0)));
        foreach (Reduction r in Enum.GetValues<Reduction>())
            for (int s = 0; s < texts.Length; s++)
            {
                if (r == Reduction.ResponseAvg && promptLengths[s] >= texts[s].Length + 1) continue;
                float[][] got = device.Get(s, r), want = host.Get(s, r), cpuWant = reference.Get(s, r);
                for (int e = 0; e <= c.NumLayers; e++)
                {
                    Assert.That(Compare.RelativeMaxError(got[e], want[e]), Is.LessThan(1e-5), $"{r} sequence {s} entry {e}: device sums vs downloaded states");
                    Assert.That(Compare.RelativeMaxError(got[e], cpuWant[e]), Is.LessThan(2e-2), $"{r} sequence {s} entry {e}: vs the CPU backend");
                }
            }
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Monitor_projections_taken_on_the_device_equal_the_full_state_path(int tp)
    {
        string dir = TestModels.Get("tiny");
        using CudaTransformer gpu = Emulator.Model(dir, tp);
        ModelConfig c = gpu.Config;
        var rng = new Random(12);
        float[] shared = Compare.RandomVector(rng, c.HiddenSize), other = Compare.RandomVector(rng, c.HiddenSize);
        // Monitors at the first and a middle block (the fused residual projection) and the last
        // block (entry L, after the final norm: project_rows); one vector shared by two requests.
        GenerationRequest[] requests =
        [
            new(Compare.RandomTokens(rng, 5, c.VocabSize), 4, new SamplingOptions(), Seed: 1)
                { Monitors = [new ProjectionMonitor("a", 0, shared), new ProjectionMonitor("b", c.NumLayers - 1, other)] },
            new(Compare.RandomTokens(rng, 9, c.VocabSize), 3, new SamplingOptions(), Seed: 2)
                { Monitors = [new ProjectionMonitor("c", 0, shared), new ProjectionMonitor("d", c.NumLayers / 2, other)] },
            new(Compare.RandomTokens(rng, 3, c.VocabSize), 3, new SamplingOptions(), Seed: 3),
        ];
        gpu.DeviceReductions = true;
        IReadOnlyList<GenerationResult> device = new Generator(gpu).Generate(requests);
        gpu.DeviceReductions = false;
        IReadOnlyList<GenerationResult> host = new Generator(gpu).Generate(requests);
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.That(device[i].Tokens, Is.EqualTo(host[i].Tokens), $"request {i}");
            Assert.That(device[i].Projections?.Length, Is.EqualTo(host[i].Projections?.Length), $"request {i}");
            for (int m = 0; m < (host[i].Projections?.Length ?? 0); m++)
            {
                Assert.That(host[i].Projections![m], Is.Not.Empty);
                Assert.That(device[i].Projections![m], Is.EqualTo(host[i].Projections![m]).Within(1e-4), $"request {i} monitor {m}");
            }
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Condition_means_are_summed_on_the_device_and_equal_the_full_state_path(int tp)
    {
        // CAST's prompt pass (ConditionalSteering.PromptMeans, with an unconditional term): per sequence and layer
        // the mean block output, summed on the device by mask (one sum_rows_by_mask per entry and pass on rank 0)
        // instead of downloading every row's state, within float-sum rounding of the full-state path.
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.Get("tiny");
        var devices = Enumerable.Range(0, tp).Select(i => new FaultyDevice(i)).ToArray();
        using CudaTransformer gpu = CudaTransformer.Load(dir, devices, tp > 1 ? new EmulatedCollectives(tp) : null);
        using IForwardModel cpu = Backends.Create("cpu", dir);
        ModelConfig c = gpu.Config;
        var rng = new Random(21);
        int[][] prompts = [Compare.RandomTokens(rng, 9, c.VocabSize), Compare.RandomTokens(rng, 4, c.VocabSize), Compare.RandomTokens(rng, 15, c.VocabSize)];
        var steering = new[] { new SteerEngine.Steering.SteeringAdd(0, Compare.RandomVector(rng, c.HiddenSize, 0.5f), 2f) };
        int[] layers = [0, c.NumLayers - 1];

        double[][][] Means(IForwardModel model, bool onDevice)
        {
            if (model is CudaTransformer t) t.DeviceReductions = onDevice;
            foreach (FaultyDevice d in devices) d.ResetCounts();
            return ConditionalSteering.PromptMeans(model, prompts, steering, layers);
        }
        double[][][] device = Means(gpu, onDevice: true);
        int reducedLaunches = devices[0].LaunchesOf("sum_rows_by_mask");
        double[][][] host = Means(gpu, onDevice: false);
        Assert.That((reducedLaunches, devices[0].LaunchesOf("sum_rows_by_mask")), Is.EqualTo((c.NumLayers + 1, 0)), "one prompt pass summed on the device; none with full states");
        double[][][] reference = Means(cpu, onDevice: false);
        for (int p = 0; p < prompts.Length; p++)
            for (int l = 0; l < layers.Length; l++)
            {
                float[] got = device[p][l].Select(x => (float)x).ToArray();
                Assert.That(Compare.RelativeMaxError(got, host[p][l].Select(x => (float)x).ToArray()), Is.LessThan(1e-5), $"prompt {p} layer {layers[l]}: device sums vs downloaded states");
                Assert.That(Compare.RelativeMaxError(got, reference[p][l].Select(x => (float)x).ToArray()), Is.LessThan(2e-2), $"prompt {p} layer {layers[l]}: vs the CPU backend");
            }
    }
}
