using SteerEngine.Model;
using SteerEngine.Generation;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>The host side of the CUDA forward on emulated devices: rank failure, uploads per step, chunked logits.</summary>
[TestFixture]
public class TensorParallelTests
{
    static (CudaTransformer Model, FaultyDevice[] Devices) Load(int tp)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        var devices = Enumerable.Range(0, tp).Select(i => new FaultyDevice(i)).ToArray();
        CudaCollectives? collectives = tp == 1 ? null : new EmulatedCollectives(tp);
        return (CudaTransformer.Load(TestModels.Get("tiny"), devices, collectives), devices);
    }

    [TestCase(1)]
    [TestCase(0)]
    public void A_failing_rank_ends_every_rank_with_its_error(int failingRank)
    {
        var (model, devices) = Load(2);
        using (model)
        {
            // The failing rank breaks before its third layer's attention all-reduce: the other rank
            // is then waiting in (or on its way to) a collective that can never complete.
            devices[failingRank].FailKernel = "attention_prefill_hd32";
            devices[failingRank].FailAtLaunch = 3;
            var forward = Task.Run(() => model.Forward([new ForwardSequence(model.NewCache(), [1, 2, 3, 4, 5])]));
            Assert.That(((IAsyncResult)forward).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(30)), Is.True, "the forward pass still waits");
            Assert.That(() => forward.GetAwaiter().GetResult(),
                Throws.TypeOf<CudaException>().With.Message.Contains($"cuda-emu:{failingRank}: injected failure"));
            Assert.That(() => model.Forward([new ForwardSequence(model.NewCache(), [1])]),
                Throws.InvalidOperationException.With.Message.Contains("aborted"));
        }
    }

    [Test]
    public void Each_rank_keeps_one_host_thread_across_forward_passes()
    {
        var (model, devices) = Load(2);
        using (model)
        {
            KvCache cache = model.NewCache();
            model.Forward([new ForwardSequence(cache, [1, 2, 3])]);
            for (int i = 0; i < 4; i++) model.Forward([new ForwardSequence(cache, [4 + i])]);
            Assert.That(devices[1].LaunchThreads, Has.Count.EqualTo(1));
            Assert.That(devices[1].LaunchThreads, Does.Not.Contain(Thread.CurrentThread));
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Each_step_uploads_its_inputs_in_one_asynchronous_copy(int tp)
    {
        var (model, devices) = Load(tp);
        using (model)
        {
            KvCache a = model.NewCache(), b = model.NewCache();
            model.Forward([new ForwardSequence(a, [1, 2, 3])]);
            foreach (FaultyDevice d in devices) d.ResetCounts();
            model.Forward([new ForwardSequence(a, [7]), new ForwardSequence(b, [8, 9])]);
            foreach (FaultyDevice d in devices)
            {
                Assert.That(d.AsyncUploads, Is.EqualTo(1), d.Name);
                Assert.That(d.SyncUploads, Is.Zero, d.Name);
            }
        }
    }

    /// <summary>
    /// The all-reduce stays f32 (docs/cuda-roofline.md): the ranks' partial sums of O and down
    /// reach the residual stream unrounded, so TP = 2 differs from TP = 1 only by the order of f32
    /// additions (and the bf16 roundings that order happens to flip), far inside the 2e-2 the CUDA
    /// path is held to; a bf16 partial per layer would add ≈ 4e-3 of rounding to every update.
    /// </summary>
    [Test]
    public void Tensor_parallel_logits_equal_one_device_up_to_f32_addition_order()
    {
        var rng = new Random(21);
        int[] prompt = Compare.RandomTokens(rng, 19, 128000);
        float[] Logits(int tp)
        {
            var (model, _) = Load(tp);
            using (model) return model.Forward([new ForwardSequence(model.NewCache(), prompt, allLogits: true)])[0];
        }
        double error = Compare.RelativeMaxError(Logits(2), Logits(1));
        TestContext.Out.WriteLine($"TP = 2 vs TP = 1: max |Δlogit| / max |logit| = {error:E2}");
        Assert.That(error, Is.LessThan(1e-5));
    }

    [Test]
    public void Logits_computed_in_chunks_of_rows_equal_those_computed_at_once()
    {
        var (model, _) = Load(2);
        using (model)
        {
            int V = model.Config.VocabSize;
            int[] tokens = Enumerable.Range(0, 40).Select(i => 1000 + 37 * i).ToArray();
            float[][] Run() => model.Forward([new ForwardSequence(model.NewCache(), tokens[..1]),
                new ForwardSequence(model.NewCache(), tokens, allLogits: true), new ForwardSequence(model.NewCache(), tokens[..5], allLogits: true)]);
            float[][] once = Run();
            model.LogitChunkBytes = 2L * (V / 2) * 4 * 7; // 7 rows per chunk: 46 rows in 7 chunks, the last one short
            float[][] chunked = Run();
            for (int s = 0; s < once.Length; s++) Assert.That(chunked[s], Is.EqualTo(once[s]), $"sequence {s}");
            Assert.That(once[1].AsSpan(0, 5 * V).ToArray(), Is.EqualTo(once[2]), "a sequence's rows land in its own buffer");
        }
    }

    [Test]
    public void A_cache_reserved_for_the_whole_generation_is_never_copied_on_the_device()
    {
        var (model, devices) = Load(1);
        using (model)
        {
            KvCache reserved = model.NewCache(70), growing = model.NewCache(1);
            int[] prompt = Enumerable.Range(0, 60).Select(i => 500 + 11 * i).ToArray();
            float[] a = model.Forward([new ForwardSequence(reserved, prompt)])[0];
            Assert.That(model.Forward([new ForwardSequence(growing, prompt)])[0], Is.EqualTo(a));
            devices[0].ResetCounts();
            for (int step = 0; step < 8; step++)
            {
                a = model.Forward([new ForwardSequence(reserved, [step + 7])])[0];
                Assert.That(model.Forward([new ForwardSequence(growing, [step + 7])])[0], Is.EqualTo(a), $"step {step}");
            }
            // Only the cache made for one token grew (once, at token 61); the one reserved for 70 never did.
            Assert.That(devices[0].DeviceCopies, Is.EqualTo(2 * model.Config.NumLayers));
        }
    }
}
