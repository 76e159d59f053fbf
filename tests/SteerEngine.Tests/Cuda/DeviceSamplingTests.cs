using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Sampling on the device (CudaTransformer.ForwardSample) against the host sampler on the same
/// backend's logits, on native/cuemu with the tiny model, on one device and on two (the drawn rows'
/// vocabulary slices joined on rank 0).
/// </summary>
[TestFixture]
public class DeviceSamplingTests
{
    static CudaTransformer Emulated(int tp) => Emulator.Model(TestModels.Get("tiny"), tp);

    static readonly SamplingOptions[] Options =
    [
        new(Temperature: 0f), new(Temperature: 0.8f), new(Temperature: 1.3f, TopK: 50), new(Temperature: 0.7f, TopP: 0.9f),
        new(Temperature: 1f, TopK: 200, TopP: 0.5f), new(Temperature: 1f, MinP: 0.05f), new(Temperature: 2f, TopP: 0.3f, MinP: 0.01f),
        new(Temperature: 0f, RepetitionPenalty: 1.5f), new(Temperature: 0.9f, TopK: 40, RepetitionPenalty: 1.3f),
        new(Temperature: 1.2f, TopP: 0.8f, RepetitionPenalty: 0.7f),
    ];

    /// <summary>A history for the penalised options: the row's most likely tokens (so the penalty changes the draw) and random ones.</summary>
    static HashSet<int>? History(SamplingOptions o, float[] row, Random rng) => o.RepetitionPenalty == 1f ? null
        : [.. TokenLogprob.Top(row, 3).Select(t => t.Token), .. Enumerable.Range(0, 20).Select(_ => rng.Next(row.Length))];

    [TestCase(1)]
    [TestCase(2)]
    public void Device_draws_equal_the_host_sampler_on_the_same_logits_and_draw(int tp)
    {
        using CudaTransformer gpu = Emulated(tp);
        int V = gpu.Config.VocabSize;
        var rng = new Random(11);
        // One batch: every option × a few draws, and a sequence that asks for its logits.
        var cases = (from o in Options from u in new[] { 0.02, 0.5, 0.93 } select (o, u)).ToArray();
        int[][] prompts = cases.Select(_ => Compare.RandomTokens(rng, 1 + rng.Next(9), V)).Append(Compare.RandomTokens(rng, 6, V)).ToArray();
        // The same batch with full logits first: the penalised draws' histories come from them.
        float[][] full = gpu.Forward(prompts.Select(p => new ForwardSequence(gpu.NewCache(), p)).ToList());
        var draws = cases.Select((c, i) => (TokenDraw?)new TokenDraw(c.o, c.u, Logprob: i % 2 == 0, TopLogprobs: i % 3 == 0 ? 5 : 0)
            { History = History(c.o, full[i], rng) }).Append(null).ToArray();

        var batch = prompts.Select(p => new ForwardSequence(gpu.NewCache(), p)).ToList();
        float[][] logits = LogitBuffers.Allocate(batch, V);
        foreach (float[] l in logits) Array.Fill(l, float.NaN);
        DrawnToken?[] drawn = gpu.ForwardSample(batch, logits, draws);
        Assert.That(drawn[^1], Is.Null, "a sequence without a draw gets none");
        Assert.That(logits[..^1].All(l => l.All(float.IsNaN)), "drawn sequences' logits never leave the device");
        Assert.That(logits[^1], Is.EqualTo(full[^1]), "the undrawn sequence's logits");
        int changed = 0;
        for (int i = 0; i < cases.Length; i++)
        {
            DrawnToken want = draws[i]!.OnHost(full[i]);
            DrawnToken got = drawn[i]!.Value;
            string what = $"{cases[i].o} u={cases[i].u}";
            if (draws[i]!.History is not null && want.Token != (draws[i]! with { History = null }).OnHost(full[i]).Token) changed++;
            Assert.That(got.Token, Is.EqualTo(want.Token), what);
            Assert.That(got.Logprob.HasValue, Is.EqualTo(want.Logprob.HasValue), what);
            if (want.Logprob is float lp) Assert.That(got.Logprob!.Value, Is.EqualTo(lp).Within(1e-4), what);
            Assert.That(got.TopLogprobs?.Select(t => t.Token), Is.EqualTo(want.TopLogprobs?.Select(t => t.Token)), what);
            for (int j = 0; j < (want.TopLogprobs?.Length ?? 0); j++)
                Assert.That(got.TopLogprobs![j].Logprob, Is.EqualTo(want.TopLogprobs![j].Logprob).Within(1e-4), what);
        }
        Assert.That(changed, Is.GreaterThan(0), "the repetition penalty changed some draws (else the test could not see it ignored)");
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Generation_with_device_sampling_equals_host_sampling_on_the_same_backend(int tp)
    {
        using CudaTransformer gpu = Emulated(tp);
        int V = gpu.Config.VocabSize;
        var rng = new Random(3);
        GenerationRequest[] requests = Options.Select((o, i) => new GenerationRequest(Compare.RandomTokens(rng, 3 + i, V), 6, o, Seed: (ulong)(100 + i))
        {
            Logprobs = i % 2 == 1, TopLogprobs = i == 2 ? 3 : 0,
        }) // and one that samples on the host: a scored prompt
          .Append(new GenerationRequest(Compare.RandomTokens(rng, 4, V), 4, new SamplingOptions(Temperature: 0.9f), Seed: 8) { PromptLogprobs = true })
          .ToArray();

        gpu.DeviceSampling = true;
        IReadOnlyList<GenerationResult> device = new Generator(gpu).Generate(requests);
        gpu.DeviceSampling = false;
        IReadOnlyList<GenerationResult> host = new Generator(gpu).Generate(requests);
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.That(device[i].Tokens, Is.EqualTo(host[i].Tokens), $"request {i}");
            Assert.That(device[i].TokenLogprobs, Is.EqualTo(host[i].TokenLogprobs).Within(1e-4), $"request {i}");
            Assert.That(device[i].TopLogprobs?.Select(t => t.Select(x => x.Token)), Is.EqualTo(host[i].TopLogprobs?.Select(t => t.Select(x => x.Token))), $"request {i}");
        }
    }
}
