using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

[TestFixture]
public class ForwardTests
{
    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Decoding_token_by_token_from_the_cache_equals_one_full_forward(string shape)
    {
        using var model = Transformer.Load(TestModels.Get(shape));
        int[] tokens = Compare.RandomTokens(new Random(3), 30, 128000);
        float[] full = model.Forward([new ForwardSequence(model.NewCache(), tokens, allLogits: true)])[0];

        KvCache cache = model.NewCache(4); // small, so the cache must grow
        int V = model.Config.VocabSize;
        model.Forward([new ForwardSequence(cache, tokens[..10])]);
        for (int t = 10; t < tokens.Length; t++)
        {
            float[] step = model.Forward([new ForwardSequence(cache, [tokens[t]])])[0];
            Assert.That(Compare.RelativeMaxError(step, full.AsSpan(t * V, V)), Is.LessThan(1e-5), $"position {t}");
        }
        Assert.That(cache.Length, Is.EqualTo(tokens.Length));
    }

    [Test]
    public void A_batch_gives_each_sequence_the_logits_it_gets_alone()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        var rng = new Random(9);
        int[][] seqs = [Compare.RandomTokens(rng, 7, 1000), Compare.RandomTokens(rng, 19, 1000)];
        var steer = new SequenceSteering([new SteeringAdd(2, Compare.RandomVector(rng, 128), 3f)], 7);
        float[][] batch = model.Forward([new ForwardSequence(model.NewCache(), seqs[0], steer), new ForwardSequence(model.NewCache(), seqs[1])]);
        float[] alone0 = model.Forward([new ForwardSequence(model.NewCache(), seqs[0], steer)])[0];
        float[] alone1 = model.Forward([new ForwardSequence(model.NewCache(), seqs[1])])[0];
        Assert.That(Compare.RelativeMaxError(batch[0], alone0), Is.LessThan(1e-6));
        Assert.That(Compare.RelativeMaxError(batch[1], alone1), Is.LessThan(1e-6));
    }

    [Test]
    public void Steering_with_a_bad_vector_is_rejected_with_a_clear_message()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        var cache = model.NewCache();
        var wrongSize = new SequenceSteering([new SteeringAdd(1, new float[7], 1f)], 1);
        Assert.That(() => model.Forward([new ForwardSequence(cache, [1, 2], wrongSize)]),
            Throws.ArgumentException.With.Message.Contains("7 elements").And.Message.Contains("128"));
        var nan = new float[128];
        nan[5] = float.NaN;
        Assert.That(() => model.Forward([new ForwardSequence(cache, [1], new SequenceSteering([new SteeringAdd(1, nan, 1f)], 1))]),
            Throws.ArgumentException.With.Message.Contains("element 5"));
        Assert.That(() => model.Forward([new ForwardSequence(cache, [1], new SequenceSteering([new SteeringAdd(4, new float[128], 1f)], 1))]),
            Throws.ArgumentException.With.Message.Contains("out of range"));
        Assert.That(cache.Length, Is.EqualTo(0), "a rejected batch must not touch the cache");
    }

    [TestCase(CpuKernelChoice.Exact)]
    [TestCase(CpuKernelChoice.Managed)]
    public void A_sink_sees_exactly_the_batch_rows_at_every_entry_after_a_larger_batch(CpuKernelChoice kernels)
    {
        // Forward reuses its buffers, so after a long prompt they are longer than a decode batch.
        using var model = Transformer.Load(TestModels.Get("tiny"), kernels);
        model.Forward([new ForwardSequence(model.NewCache(), Compare.RandomTokens(new Random(4), 20, 1000))]);
        var sink = new RowCountSink();
        model.Forward([new ForwardSequence(model.NewCache(), [5, 6, 7])], sink);
        Assert.That(sink.Seen, Is.EqualTo(Enumerable.Range(0, model.Config.NumLayers + 1).Select(e => (e, 3 * model.Config.HiddenSize))));
    }

    sealed class RowCountSink : SteerEngine.Capture.IHiddenStateSink
    {
        public List<(int Entry, int Length)> Seen { get; } = [];
        public void Record(int entry, ReadOnlySpan<float> states, SteerEngine.Capture.BatchLayout layout) => Seen.Add((entry, states.Length));
    }

    [Test]
    public void Token_ids_outside_the_vocabulary_are_rejected()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        Assert.That(() => model.Forward([new ForwardSequence(model.NewCache(), [5, 200000])]),
            Throws.ArgumentException.With.Message.Contains("200000"));
    }
}
