using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

/// <summary>Continuous batching and chunked prefill must not change any sequence's tokens.</summary>
[TestFixture]
public class SchedulerTests
{
    [Test]
    public void Joining_leaving_and_chunked_prefill_give_each_sequence_its_solo_tokens()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        var rng = new Random(4);
        var requests = Enumerable.Range(0, 7).Select(i => new GenerationRequest(
            Compare.RandomTokens(rng, 3 + 9 * i, 128000), 2 + 3 * (i % 3),
            i % 2 == 0 ? new SamplingOptions() : new SamplingOptions(0.9f, TopK: 50),
            i % 3 == 0 ? null : [new SteeringAdd(i % 4, Compare.RandomVector(rng, 128), 2f, (SteeringPositions)(i % 3))],
            Seed: (ulong)i)).ToList();

        var tight = new Generator(model, options: new SchedulerOptions(MaxSequences: 3, MaxTokensPerStep: 11)).Generate(requests);
        for (int i = 0; i < requests.Count; i++)
        {
            var solo = new Generator(model).Generate([requests[i]])[0];
            Assert.That(tight[i].Tokens, Is.EqualTo(solo.Tokens), $"request {i}");
            Assert.That(tight[i].Index, Is.EqualTo(i));
        }
    }

    [Test]
    public void Requests_are_pulled_only_when_a_slot_is_free()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        int pulled = 0;
        IEnumerable<GenerationRequest> Source()
        {
            for (int i = 0; i < 10; i++) { pulled++; yield return new GenerationRequest([1, 2, 3], 3, new SamplingOptions()); }
        }
        using var e = new Generator(model, options: new SchedulerOptions(MaxSequences: 2)).Stream(Source()).GetEnumerator();
        Assert.That(e.MoveNext(), Is.True);
        Assert.That(pulled, Is.LessThanOrEqualTo(3));
    }

    [Test]
    public void Logprobs_and_scoring_agree()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        int[] prompt = Compare.RandomTokens(new Random(8), 9, 128000);
        var r = new Generator(model).Generate([new GenerationRequest(prompt, 6, new SamplingOptions()) { Logprobs = true }])[0];
        var score = Scoring.ScoreCompletions(model, prompt, [r.Tokens])[0];
        Assert.That(score.SumLogprob, Is.EqualTo(r.TokenLogprobs!.Sum(x => (double)x)).Within(1e-3));
        Assert.That(score.Perplexity, Is.EqualTo(Math.Exp(-score.SumLogprob / 6)).Within(1e-9));
    }
}
