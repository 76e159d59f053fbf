using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

/// <summary>
/// Rows that share a prompt prefix compute it once and copy it; every result must keep the bits of
/// unshared prefill: tokens, log-probs and monitored projections.
/// </summary>
[TestFixture]
public class PrefixSharingTests
{
    static IEnumerable<TestCaseData> Models()
    {
        foreach (string shape in new[] { "tiny", "qwen3-tiny" })
            foreach (CpuKernelChoice kernels in new[] { CpuKernelChoice.Exact, CpuKernelChoice.Auto })
                yield return new TestCaseData(shape, kernels);
    }

    /// <summary>
    /// Prompts × multipliers × samples: prompt 2 repeats prompt 0's tokens in another array, prompt 1
    /// has the same length; two unsteered samples of prompt 1 close the list.
    /// </summary>
    static List<GenerationRequest> Sweep(ModelConfig c, SteeringPositions positions, SamplingOptions sampling)
    {
        var rng = new Random(19);
        int[] a = Compare.RandomTokens(rng, 13, 128000), b = Compare.RandomTokens(rng, 13, 128000);
        int[][] prompts = [a, b, (int[])a.Clone()];
        float[] vector = Compare.RandomVector(rng, c.HiddenSize, 2f);
        var monitor = new ProjectionMonitor("m", c.NumLayers - 1, Compare.RandomVector(rng, c.HiddenSize));
        var requests = (from p in Enumerable.Range(0, prompts.Length)
                        from m in new[] { -3f, 3f }
                        from s in Enumerable.Range(0, 2)
                        select new GenerationRequest(prompts[p], 5, sampling, [new SteeringAdd(1, vector, m, positions)], Seed: (ulong)(p % 2 * 10 + s))
                        { Logprobs = true, Monitors = [monitor] }).ToList();
        for (int s = 0; s < 2; s++) requests.Add(new GenerationRequest(b, 5, sampling, Seed: (ulong)s) { Logprobs = true });
        return requests;
    }

    static void AssertSameBits(IReadOnlyList<GenerationResult> shared, IReadOnlyList<GenerationResult> unshared, string what)
    {
        for (int i = 0; i < unshared.Count; i++)
        {
            Assert.That(shared[i].Tokens, Is.EqualTo(unshared[i].Tokens), $"{what}: tokens of row {i}");
            Assert.That(shared[i].TokenLogprobs!.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(unshared[i].TokenLogprobs!.Select(BitConverter.SingleToInt32Bits)), $"{what}: log-probs of row {i}");
            Assert.That((shared[i].Projections ?? []).SelectMany(p => p).Select(BitConverter.SingleToInt32Bits),
                Is.EqualTo((unshared[i].Projections ?? []).SelectMany(p => p).Select(BitConverter.SingleToInt32Bits)), $"{what}: projections of row {i}");
        }
    }

    [TestCaseSource(nameof(Models))]
    public void Shared_prefixes_keep_the_bits_of_unshared_prefill(string shape, CpuKernelChoice kernels)
    {
        using var model = Transformer.Load(TestModels.Get(shape), kernels);
        var greedy = new SamplingOptions();
        var sampled = new SamplingOptions(1f, TopP: 0.9f);
        var cases = new[] { (SteeringPositions.All, sampled), (SteeringPositions.Prompt, greedy), (SteeringPositions.Response, greedy), (SteeringPositions.Response, sampled) };
        // The exact path (slow at this vocabulary) takes one case of each sharing rule.
        foreach ((SteeringPositions positions, SamplingOptions sampling) in kernels == CpuKernelChoice.Exact ? cases[1..3] : cases)
            {
                var requests = Sweep(model.Config, positions, sampling);
                var plain = new Generator(model, options: new SchedulerOptions(SharePrefixes: false));
                var sharing = new Generator(model);
                var unshared = plain.Generate(requests);
                var shared = sharing.Generate(requests);
                string what = $"{shape} {model.Kernels} {positions} {(sampling.Greedy ? "greedy" : "sampled")}";
                AssertSameBits(shared, unshared, what);

                // Prompts 0 and 2 are one prompt. With all / prompt steering the 2 samples of each (prompt, multiplier)
                // share, and the unsteered rows of prompt 1; with response steering every row of a prompt does.
                int groups = positions == SteeringPositions.Response ? 2 : 2 + 2 + 1;
                long saved = (requests.Count - groups) * 12L;
                Assert.That(plain.TokensProcessed - sharing.TokensProcessed, Is.EqualTo(saved), $"{what}: prompt tokens computed once per group");
            }
    }

    [Test]
    public void Sharing_under_a_tight_schedule_keeps_the_bits_when_donors_leave_early()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"), CpuKernelChoice.Auto);
        var requests = Sweep(model.Config, SteeringPositions.Response, new SamplingOptions(0.8f, TopK: 40));
        var unshared = new Generator(model, options: new SchedulerOptions(MaxSequences: 64, SharePrefixes: false)).Generate(requests);
        var shared = new Generator(model, options: new SchedulerOptions(MaxSequences: 3, MaxTokensPerStep: 11)).Generate(requests);
        AssertSameBits(shared, unshared, "max 3 sequences, 11 tokens a step");
    }

    [Test]
    public void A_prefix_key_covers_the_tokens_before_the_last_and_the_steering_that_reaches_them()
    {
        float[] v = [1f, 2f], w = [1f, 2f], u = [1f, 3f];
        PrefixKey Key(int[] tokens, params SteeringAdd[] adds) => PrefixKey.For(new GenerationRequest(tokens, 4, new SamplingOptions(), adds))!;
        Assert.That(Key([1, 2, 3]), Is.EqualTo(Key([1, 2, 4])), "the last prompt token is every row's own");
        Assert.That(Key([1, 2, 3]), Is.Not.EqualTo(Key([1, 5, 3])));
        Assert.That(Key([1, 2, 3], new SteeringAdd(0, v, 2f)), Is.EqualTo(Key([1, 2, 3], new SteeringAdd(0, w, 2f))), "equal vectors in other arrays");
        Assert.That(Key([1, 2, 3], new SteeringAdd(0, v, 2f)), Is.Not.EqualTo(Key([1, 2, 3], new SteeringAdd(0, u, 2f))));
        Assert.That(Key([1, 2, 3], new SteeringAdd(0, v, 2f)), Is.Not.EqualTo(Key([1, 2, 3], new SteeringAdd(0, v, -2f))));
        Assert.That(Key([1, 2, 3], new SteeringAdd(0, v, 2f, SteeringPositions.Response)), Is.EqualTo(Key([1, 2, 3], new SteeringAdd(1, u, -7f, SteeringPositions.Response))),
            "response steering starts at the last prompt token");
        var add = new SteeringAdd(0, v, 2f);
        Assert.That(Key([1, 2, 3], add), Is.Not.EqualTo(Key([1, 2, 3], add with { Op = SteeringOp.Ablate })), "the op");
        Assert.That(Key([1, 2, 3], add), Is.Not.EqualTo(Key([1, 2, 3], add with { Hook = SteeringHook.ResidMid })), "the hook");
        Assert.That(Key([1, 2, 3], add with { Hook = SteeringHook.AttnZ, Head = 0 }), Is.Not.EqualTo(Key([1, 2, 3], add with { Hook = SteeringHook.AttnZ, Head = 1 })), "the head");
        Assert.That(Key([1, 2, 3], add with { Op = SteeringOp.Cap, Hi = 1f }), Is.Not.EqualTo(Key([1, 2, 3], add with { Op = SteeringOp.Cap, Hi = 2f })), "the op's parameters");
        var listed = add with { Positions = SteeringPositions.Tokens, TokenPositions = [0] };
        Assert.That(Key([1, 2, 3], listed), Is.Not.EqualTo(Key([1, 2, 3])), "a listed prompt position is steered in the prefix");
        Assert.That(Key([1, 2, 3], listed), Is.EqualTo(Key([1, 2, 3], listed with { TokenPositions = [0] })), "equal lists in other arrays");
        Assert.That(Key([1, 2, 3], listed with { TokenPositions = [2] }), Is.EqualTo(Key([1, 2, 3])), "a position past the prefix is the row's own");
        Assert.That(Key([1, 2, 3], new SteeringAdd(0, v, 2f)), Is.Not.EqualTo(Key([1, 2, 3], new SteeringAdd(0, v, 2f) { Op = SteeringOp.AddNormalized })), "the operation");
        Assert.That(Key([1, 2, 3], new SteeringAdd(0, v, 2f) { Op = SteeringOp.Set, Value = 1f }),
            Is.Not.EqualTo(Key([1, 2, 3], new SteeringAdd(0, v, 2f) { Op = SteeringOp.Set, Value = 2f })), "the operation's parameters");
        Assert.That(Key([1, 2, 3, 4], new SteeringAdd(0, v, 2f, SteeringPositions.Tokens) { TokenPositions = [1] }), Is.Not.EqualTo(Key([1, 2, 3, 4])),
            "a token list reaching into the prefix, though not its last position");
        Assert.That(Key([1, 2, 3, 4], new SteeringAdd(0, v, 2f, SteeringPositions.Tokens) { TokenPositions = [3] }), Is.EqualTo(Key([1, 2, 3, 4])),
            "a token list at the last prompt position only");
        Assert.That(PrefixKey.For(new GenerationRequest([5], 4, new SamplingOptions())), Is.Null, "a one-token prompt has nothing to share");
        Assert.That(PrefixKey.For(new GenerationRequest([5, 6], 4, new SamplingOptions()) { PromptLogprobs = true }), Is.Null, "a scored prompt needs all its rows");
    }
}
