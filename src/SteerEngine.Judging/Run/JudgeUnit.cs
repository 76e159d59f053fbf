using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Scoring;

namespace SteerEngine.Judging.Run;

/// <summary>
/// One judgement to make: an item under a rubric (and, for pairwise, the answer it is compared
/// with and its condition). Its id — item id and rubric name — is what resume looks for in the output.
/// </summary>
public sealed record JudgeUnit(JudgeItem Item, Rubric Rubric, JudgeItem? Other = null, string? Condition = null)
{
    public string Id => $"{Item.Id}|{Rubric.Name}";

    /// <summary>The calls this unit needs: one, or for pairwise two (a shown first, then b shown first). Keys name them in batch files.</summary>
    public IReadOnlyList<(string Key, JudgeRequest Request)> Requests()
    {
        Rubric r = Rubric;
        if (r.Kind == ScorerKind.Pairwise)
        {
            string b = Other?.Answer ?? throw new InvalidOperationException($"pairwise unit {Id} has no answer to compare with");
            return
            [
                ("ab", new JudgeRequest(r.Messages(r.RenderPair(Item.Question, Item.Answer, b)), r.ReplyTokens)),
                ("ba", new JudgeRequest(r.Messages(r.RenderPair(Item.Question, b, Item.Answer)), r.ReplyTokens)),
            ];
        }
        int top = r.Kind == ScorerKind.Weighted ? 20 : 0;
        return [("", new JudgeRequest(r.Messages(r.Render(Item.Question, Item.Answer)), r.ReplyTokens, top))];
    }
}

/// <summary>What became of a unit: a status (scored, text, unparsed, no_score, failed), the score, and the raw replies it came from.</summary>
public sealed record JudgeOutcome(string Status)
{
    public double? Score { get; init; }
    public string? TextAnswer { get; init; }
    public IReadOnlyList<string?> Replies { get; init; } = [];
    public IReadOnlyList<TopLogprob>? TopLogprobs { get; init; }
    public double? WeightTotal { get; init; }
    public PairwiseVerdict? Verdict { get; init; }
    public string? Error { get; init; }
    public long PromptTokens { get; init; }
    public long CompletionTokens { get; init; }

    public const string Scored = "scored", Text = "text", Unparsed = "unparsed", NoScore = "no_score", Failed = "failed";
}

/// <summary>Turns a unit's replies (or the failure of one of its calls) into its outcome: the scorers applied as the rubric says.</summary>
public static class UnitScoring
{
    /// <summary>replies[i] answers Requests()[i]; a null reply failed with errors[i].</summary>
    public static JudgeOutcome Interpret(JudgeUnit unit, IReadOnlyList<JudgeReply?> replies, IReadOnlyList<string?> errors)
    {
        long pin = replies.Sum(r => r?.PromptTokens ?? 0), pout = replies.Sum(r => r?.CompletionTokens ?? 0);
        var texts = replies.Select(r => r?.Text).ToList();
        int failed = replies.ToList().FindIndex(r => r is null);
        if (failed >= 0)
            return new JudgeOutcome(JudgeOutcome.Failed) { Error = errors[failed] ?? "no reply", Replies = texts, PromptTokens = pin, CompletionTokens = pout };
        Rubric r = unit.Rubric;
        switch (r.Kind)
        {
            case ScorerKind.Weighted:
            {
                var top = replies[0]!.TopLogprobs ?? [];
                WeightedScore w = WeightedScorer.Score(top, r.ScaleMin, r.ScaleMax, r.TextAnswers);
                string status = w.Score is not null ? JudgeOutcome.Scored : w.TextAnswer is not null ? JudgeOutcome.Text : JudgeOutcome.NoScore;
                return new JudgeOutcome(status)
                {
                    Score = w.Score, TextAnswer = w.TextAnswer, WeightTotal = w.Total, TopLogprobs = top, Replies = texts,
                    PromptTokens = pin, CompletionTokens = pout,
                };
            }
            case ScorerKind.Rating:
            {
                RatingScore s = RatingScorer.Parse(texts[0]!, r.ScaleMin, r.ScaleMax, r.TextAnswers);
                string status = s.Score is not null ? JudgeOutcome.Scored : s.TextAnswer is not null ? JudgeOutcome.Text : JudgeOutcome.Unparsed;
                return new JudgeOutcome(status) { Score = s.Score, TextAnswer = s.TextAnswer, Replies = texts, PromptTokens = pin, CompletionTokens = pout };
            }
            default:
            {
                var verdict = PairwiseScorer.Combine(PairwiseScorer.Parse(texts[0]!, r.ChoiceA, r.ChoiceB), PairwiseScorer.Parse(texts[1]!, r.ChoiceA, r.ChoiceB));
                return new JudgeOutcome(verdict.Winner is null ? JudgeOutcome.Unparsed : JudgeOutcome.Scored)
                {
                    Score = verdict.WinShare, Verdict = verdict, Replies = texts, PromptTokens = pin, CompletionTokens = pout,
                };
            }
        }
    }
}
