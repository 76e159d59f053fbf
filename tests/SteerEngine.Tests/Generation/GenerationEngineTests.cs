using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

/// <summary>The shared engine must give each request the tokens Generator gives it alone, whoever else is in the batch.</summary>
[TestFixture]
public class GenerationEngineTests
{
    static List<GenerationRequest> Requests(int count, int seed)
    {
        var rng = new Random(seed);
        float[] v = Compare.RandomVector(rng, 128);
        return Enumerable.Range(0, count).Select(i => new GenerationRequest(
            Compare.RandomTokens(rng, 3 + 5 * (i % 4), 128000), 3 + i % 5,
            i % 2 == 0 ? new SamplingOptions() : new SamplingOptions(0.9f, 0.95f),
            [new SteeringAdd(i % 4, v, i - count / 2f, (SteeringPositions)(i % 3))], Seed: (ulong)(1000 + i)) { Logprobs = i % 3 == 0 }).ToList();
    }

    [Test]
    public async Task Concurrent_submissions_get_their_solo_tokens_and_stream_them_in_order()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        var requests = Requests(12, 7);
        using var engine = new GenerationEngine(model, options: new EngineOptions(new SchedulerOptions(MaxSequences: 5, MaxTokensPerStep: 16)));
        var streamed = requests.Select(_ => new List<int>()).ToArray();
        var tasks = requests.Select((r, i) => Task.Run(() => engine.Submit(r, t => streamed[i].Add(t.Token)))).ToArray();
        GenerationResult[] results = await Task.WhenAll(tasks);
        for (int i = 0; i < requests.Count; i++)
        {
            var solo = new Generator(model).Generate([requests[i]])[0];
            Assert.That(results[i].Tokens, Is.EqualTo(solo.Tokens), $"request {i}");
            Assert.That(results[i].TokenLogprobs, Is.EqualTo(solo.TokenLogprobs), $"request {i}");
            Assert.That(streamed[i], Is.EqualTo(solo.Tokens), $"request {i} streamed");
        }
        Assert.That(engine.Stats.Finished, Is.EqualTo(requests.Count));
    }

    [Test]
    public async Task A_cancelled_request_frees_its_slot_and_the_others_finish()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        using var engine = new GenerationEngine(model, options: new EngineOptions(new SchedulerOptions(MaxSequences: 1)));
        using var cancel = new CancellationTokenSource();
        var first = new GenerationRequest([1, 2, 3], 100_000, new SamplingOptions());
        int seen = 0;
        Task<GenerationResult> endless = engine.Submit(first, _ => { if (++seen == 3) cancel.Cancel(); }, cancel.Token);
        var second = new GenerationRequest([4, 5, 6], 4, new SamplingOptions());
        Task<GenerationResult> next = engine.Submit(second);
        Assert.That(async () => await endless, Throws.InstanceOf<OperationCanceledException>());
        var result = await next.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(result.Tokens, Is.EqualTo(new Generator(model).Generate([second])[0].Tokens));
        Assert.That(seen, Is.LessThan(10));
        Assert.That(engine.Stats.Cancelled, Is.EqualTo(1));
    }

    [Test]
    public void Invalid_requests_and_a_full_queue_are_refused_at_submission()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        using var engine = new GenerationEngine(model, options: new EngineOptions(new SchedulerOptions(MaxSequences: 1), MaxWaiting: 2));
        Assert.That(() => engine.Submit(new GenerationRequest([1], 2, new SamplingOptions(), [new SteeringAdd(99, new float[128], 1f)])),
            Throws.ArgumentException.With.Message.Contains("layer 99"));
        using var cancel = new CancellationTokenSource();
        var slow = new GenerationRequest([1, 2], 100_000, new SamplingOptions());
        var tasks = new List<Task<GenerationResult>>();
        Assert.That(() => { for (int i = 0; i < 10; i++) tasks.Add(engine.Submit(slow, cancel: cancel.Token)); }, Throws.InstanceOf<EngineBusyException>());
        Assert.That(tasks.Count, Is.InRange(2, 3));
        cancel.Cancel();
        Assert.That(() => Task.WhenAll(tasks).Wait(TimeSpan.FromSeconds(30)), Throws.Exception);
        Assert.That(tasks.All(t => t.IsCanceled));
    }

    [Test]
    public async Task A_throwing_token_callback_fails_only_its_own_request()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        using var engine = new GenerationEngine(model);
        var request = new GenerationRequest([1, 2, 3], 5, new SamplingOptions());
        Task<GenerationResult> bad = engine.Submit(request, _ => throw new IOException("client went away"));
        Task<GenerationResult> good = engine.Submit(request);
        Assert.That(async () => await bad, Throws.InstanceOf<IOException>());
        Assert.That((await good).Tokens, Has.Length.EqualTo(5));
    }
}
