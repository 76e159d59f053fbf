using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation;

[TestFixture]
public class TopLogprobsTests
{
    [Test]
    public void Top_k_equals_a_full_sort_of_log_softmax()
    {
        var rng = new Random(5);
        float[] logits = Enumerable.Range(0, 500).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        logits[17] = logits[300];   // a tie: the lower id comes first
        foreach (int k in new[] { 1, 2, 7, 20 })
        {
            var expected = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(k)
                .Select(i => (Token: i, Logprob: Sampler.LogProb(logits, i))).ToList();
            TokenLogprob[] top = TokenLogprob.Top(logits, k);
            Assert.That(top.Select(t => t.Token), Is.EqualTo(expected.Select(e => e.Token)), $"k = {k}");
            for (int j = 0; j < k; j++) Assert.That(top[j].Logprob, Is.EqualTo(expected[j].Logprob).Within(1e-5), $"k = {k}, rank {j}");
        }
    }

    [Test]
    public void Generated_tokens_carry_their_alternatives_and_greedy_picks_the_first()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        int[] prompt = Compare.RandomTokens(new Random(6), 7, 128000);
        var plain = new Generator(model).Generate([new GenerationRequest(prompt, 6, new SamplingOptions())])[0];
        var r = new Generator(model).Generate([new GenerationRequest(prompt, 6, new SamplingOptions()) { TopLogprobs = 20 }])[0];
        Assert.That(r.Tokens, Is.EqualTo(plain.Tokens));
        Assert.That(r.TopLogprobs, Has.Length.EqualTo(6));
        Assert.That(r.TokenLogprobs, Has.Length.EqualTo(6));
        for (int t = 0; t < 6; t++)
        {
            Assert.That(r.TopLogprobs![t], Has.Length.EqualTo(20));
            Assert.That(r.TopLogprobs[t][0].Token, Is.EqualTo(r.Tokens[t]));
            Assert.That(r.TopLogprobs[t][0].Logprob, Is.EqualTo(r.TokenLogprobs![t]).Within(1e-5));
            Assert.That(r.TopLogprobs[t].Select(a => a.Logprob), Is.Ordered.Descending);
        }
    }

    [Test]
    public void Prompt_logprobs_equal_scoring_the_prompt_in_one_pass_even_when_prefilled_in_chunks()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        int[] prompt = Compare.RandomTokens(new Random(8), 13, 128000);
        var score = Scoring.ScoreCompletions(model, prompt[..1], [prompt[1..]])[0];
        var generator = new Generator(model, options: new SchedulerOptions(MaxTokensPerStep: 5));
        var r = generator.Generate([new GenerationRequest(prompt, 0, new SamplingOptions()) { PromptLogprobs = true, TopLogprobs = 3 },
                                    new GenerationRequest(prompt, 2, new SamplingOptions()) { PromptLogprobs = true }]);
        Assert.That(r[0].Tokens, Is.Empty);
        Assert.That(r[0].PromptLogprobs, Has.Length.EqualTo(12));
        Assert.That(r[0].PromptLogprobs!.Sum(x => (double)x), Is.EqualTo(score.SumLogprob).Within(1e-3));
        Assert.That(r[0].PromptTopLogprobs, Has.Length.EqualTo(12));
        Assert.That(r[0].PromptTopLogprobs!.All(t => t.Length == 3));
        Assert.That(r[1].PromptLogprobs, Is.EqualTo(r[0].PromptLogprobs));
        Assert.That(r[1].Tokens, Is.EqualTo(new Generator(model).Generate([new GenerationRequest(prompt, 2, new SamplingOptions())])[0].Tokens));
    }

    [Test]
    public void More_than_twenty_alternatives_is_refused()
    {
        using var model = Transformer.Load(TestModels.Get("tiny"));
        var request = new GenerationRequest([1, 2], 2, new SamplingOptions()) { TopLogprobs = 21 };
        Assert.That(() => new Generator(model).Generate([request]), Throws.ArgumentException.With.Message.Contains("top log-probs 21"));
    }
}
