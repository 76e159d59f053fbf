using SteerEngine.Judging.Scoring;

namespace SteerEngine.Tests.Judging;

public class ScorerTests
{
    /// <summary>The weighted score computed the plain way: p = e^lp over tokens whose trimmed text is all digits and ≤ 100.</summary>
    static double? Reference(IEnumerable<(string Token, double Logprob)> top)
    {
        double total = 0, sum = 0;
        foreach (var (tok, lp) in top)
        {
            string t = tok.Trim();
            if (t.Length == 0 || !t.All(char.IsAsciiDigit)) continue;
            int v = int.Parse(t);
            if (v > 100) continue;
            total += Math.Exp(lp);
            sum += Math.Exp(lp) * v;
        }
        return total < 0.25 ? null : sum / total;
    }

    [Test]
    public void Weighted_score_equals_an_independent_computation_over_random_top_logprobs()
    {
        var rng = new Random(15);
        string[] words = ["CODE", "REFUSAL", "the", " ", "7.", "seven", "-3"];
        for (int trial = 0; trial < 200; trial++)
        {
            var logits = Enumerable.Range(0, 20).Select(_ => rng.NextDouble() * 6).ToArray();
            double z = Math.Log(logits.Sum(Math.Exp) + rng.NextDouble() * 50); // the rest of the vocabulary holds some mass
            var top = logits.Select(l =>
            {
                string tok = rng.Next(4) switch
                {
                    0 => words[rng.Next(words.Length)],
                    1 => " " + rng.Next(0, 120),
                    2 => rng.Next(0, 10).ToString("00"),
                    _ => rng.Next(0, 120).ToString(),
                };
                return (tok, l - z);
            }).ToArray();
            WeightedScore got = WeightedScorer.Score(top.Select(t => new TopLogprob(t.tok, t.Item2)).ToList());
            double? want = Reference(top);
            if (want is null) Assert.That(got.Score, Is.Null, $"trial {trial}");
            else Assert.That(got.Score, Is.EqualTo(want.Value).Within(1e-9), $"trial {trial}");
        }
    }

    [Test]
    public void Weighted_score_edge_cases()
    {
        static TopLogprob T(string tok, double p) => new(tok, Math.Log(p));
        Assert.That(WeightedScorer.Score([T("CODE", 0.9), T("the", 0.05)]).Score, Is.Null, "no integer tokens");
        Assert.That(WeightedScorer.Score([T("CODE", 0.8), T("50", 0.2)]).Score, Is.Null, "total 0.2 < 0.25");
        Assert.That(WeightedScorer.Score([T("CODE", 0.75), T("40", 0.25)]).Score, Is.EqualTo(40).Within(1e-12), "total exactly 0.25 scores");
        Assert.That(WeightedScorer.Score([T(" 7", 0.5), T("07", 0.5)]).Score, Is.EqualTo(7).Within(1e-12), "\" 7\" and \"07\" are 7");
        Assert.That(WeightedScorer.Score([T("100", 0.5), T("0", 0.5)]).Score, Is.EqualTo(50).Within(1e-12), "100 is on the scale");
        Assert.That(WeightedScorer.Score([T("101", 0.6), T("90", 0.4)]).Score, Is.EqualTo(90).Within(1e-12), "101 is off the scale");
        Assert.That(WeightedScorer.Score([T("101", 0.9), T("90", 0.1)]).Score, Is.Null, "101's mass does not count toward the total");
        Assert.That(WeightedScorer.Score([T("80", 0.3), T("20", 0.1)]).Score, Is.EqualTo(65).Within(1e-12), "normalised by the integer total, not 1");
        Assert.That(WeightedScorer.Score([T("+7", 0.5), T("7.", 0.5)]).Score, Is.Null, "signs and decimals are not integers");
    }

    [Test]
    public void Weighted_text_answers_are_kept_only_when_no_score()
    {
        string[] text = ["CODE", "REFUSAL"];
        static TopLogprob T(string tok, double p) => new(tok, Math.Log(p));
        Assert.That(WeightedScorer.Score([T("REF", 0.9), T("5", 0.05)], textAnswers: text).TextAnswer, Is.EqualTo("REFUSAL"));
        Assert.That(WeightedScorer.Score([T("CODE", 0.9)], textAnswers: text).TextAnswer, Is.EqualTo("CODE"));
        Assert.That(WeightedScorer.Score([T("CODE", 0.6), T("30", 0.4)], textAnswers: text), Has.Property("Score").EqualTo(30.0).And.Property("TextAnswer").Null);
        Assert.That(WeightedScorer.Score([T("the", 0.9)], textAnswers: text).TextAnswer, Is.Null);
        Assert.That(WeightedScorer.Score([T("CODE", 0.9)]).TextAnswer, Is.Null, "no text answers in the rubric");
    }

    [TestCase("7", 7)]
    [TestCase(" 7.\n", 7)]
    [TestCase("Score: 8", 8)]
    [TestCase("7/10", 7)]
    [TestCase("7 out of 10", 7)]
    [TestCase("10", 10)]
    [TestCase("1", 1)]
    [TestCase("", null)]
    [TestCase("seven", null)]
    [TestCase("7.5", null)]
    [TestCase("between 6 and 8", null)]
    [TestCase("11", null)]
    [TestCase("0", null)]
    [TestCase("7/9", null)]
    public void Rating_parses_one_number_on_the_scale_or_nothing(string reply, int? want)
    {
        RatingScore s = RatingScorer.Parse(reply, 1, 10);
        Assert.That(s.Score, Is.EqualTo(want));
        Assert.That(s.Parsed, Is.EqualTo(want is not null));
    }

    [Test]
    public void Rating_keeps_text_answers()
    {
        Assert.That(RatingScorer.Parse(" refusal.", 1, 10, ["CODE", "REFUSAL"]).TextAnswer, Is.EqualTo("REFUSAL"));
        Assert.That(RatingScorer.Parse("REFUSAL", 1, 10).Parsed, Is.False);
    }

    [Test]
    public void Pairwise_parses_picks_and_combines_both_orders()
    {
        Assert.That(PairwiseScorer.Parse(" A.", "A", "B"), Is.EqualTo(PairwisePick.First));
        Assert.That(PairwiseScorer.Parse("Answer B", "A", "B"), Is.EqualTo(PairwisePick.Second));
        Assert.That(PairwiseScorer.Parse("b", "A", "B"), Is.EqualTo(PairwisePick.Second));
        Assert.That(PairwiseScorer.Parse("A or B", "A", "B"), Is.EqualTo(PairwisePick.Unparsed));
        Assert.That(PairwiseScorer.Combine(PairwisePick.First, PairwisePick.Second).Winner, Is.EqualTo("a"));
        Assert.That(PairwiseScorer.Combine(PairwisePick.Second, PairwisePick.First).Winner, Is.EqualTo("b"));
        var tie = PairwiseScorer.Combine(PairwisePick.First, PairwisePick.First);
        Assert.That((tie.Winner, tie.Consistent, tie.WinShare), Is.EqualTo(("tie", false, (double?)0.5)));
        Assert.That(PairwiseScorer.Combine(PairwisePick.Unparsed, PairwisePick.First).WinShare, Is.Null);
    }
}
