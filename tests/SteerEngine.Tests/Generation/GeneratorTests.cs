using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

[TestFixture]
public class GeneratorTests
{
    [Test]
    public void A_sampled_sequence_is_the_same_alone_and_in_a_batch()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        var rng = new Random(1);
        var sampling = new SamplingOptions(1.0f, 0.95f);
        var target = new GenerationRequest(Compare.RandomTokens(rng, 9, 128000), 12, sampling, Seed: 42);
        var others = Enumerable.Range(0, 3).Select(i => new GenerationRequest(Compare.RandomTokens(rng, 4 + 7 * i, 128000), 5 + i, sampling,
            [new SteeringAdd(1, Compare.RandomVector(rng, 128), 2f)], Seed: (ulong)i)).ToList();

        var alone = new Generator(model).Generate([target])[0];
        var batched = new Generator(model).Generate([others[0], target, others[1], others[2]])[1];
        Assert.That(batched.Tokens, Is.EqualTo(alone.Tokens));
        Assert.That(alone.Tokens, Has.Length.EqualTo(12));
        Assert.That(alone.FinishReason, Is.EqualTo("length"));
    }

    [Test]
    public void Greedy_generation_stops_at_a_stop_token()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        int[] prompt = Compare.RandomTokens(new Random(2), 6, 128000);
        var free = new Generator(model).Generate([new GenerationRequest(prompt, 8, new SamplingOptions())])[0];
        int stop = free.Tokens[3];
        var stopped = new Generator(model).Generate([new GenerationRequest(prompt, 8, new SamplingOptions(), StopTokens: [stop])])[0];
        int first = Array.IndexOf(free.Tokens, stop);
        Assert.That(stopped.Tokens, Is.EqualTo(free.Tokens[..(first + 1)]));
        Assert.That(stopped.FinishReason, Is.EqualTo("stop"));
    }

    [Test]
    public void Steering_changes_greedy_output_and_multiplier_zero_does_not()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        int[] prompt = Compare.RandomTokens(new Random(3), 6, 128000);
        var v = new float[128];
        model.Weights.LmHead.ReadRow(1000, v);
        GenerationRequest Req(float m) => new(prompt, 10, new SamplingOptions(), [new SteeringAdd(3, v, m)]);
        var results = new Generator(model).Generate([Req(0f), Req(40f)]);
        var plain = new Generator(model).Generate([new GenerationRequest(prompt, 10, new SamplingOptions())])[0];
        Assert.That(results[0].Tokens, Is.EqualTo(plain.Tokens));
        Assert.That(results[1].Tokens, Does.Contain(1000));
    }
}
