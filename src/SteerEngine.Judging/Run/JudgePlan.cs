using SteerEngine.Judging.Data;
using SteerEngine.Judging.Rubrics;

namespace SteerEngine.Judging.Run;

/// <summary>
/// What a run judges: every input item under every rubric. A pairwise rubric compares each item
/// with the answer in <see cref="Against"/> to the same question — the k-th answer to a question
/// in the input with the k-th answer to it in the comparison file — and groups the verdicts by
/// the item's <see cref="ConditionField"/> (its multiplier, say) for win rates.
/// Units are enumerated lazily, in input order, so a run never holds the input in memory.
/// </summary>
public sealed record JudgePlan(string Input, InputFields Fields, IReadOnlyList<Rubric> Rubrics, string? Against = null, string? ConditionField = null)
{
    Dictionary<(string, int), JudgeItem>? _against;

    public IEnumerable<JudgeUnit> Units()
    {
        bool pairwise = Rubrics.Any(r => r.Kind == ScorerKind.Pairwise);
        if (pairwise && Against is null)
            throw new ArgumentException("a pairwise rubric needs --against FILE: the answers each input answer is compared with");
        var occurrence = new Dictionary<string, int>();
        foreach (JudgeItem item in JudgeInput.Read(Input, Fields))
        {
            JudgeItem? other = null;
            string? condition = null;
            if (pairwise)
            {
                int k = occurrence[item.Question] = occurrence.GetValueOrDefault(item.Question) + 1;
                if (!AgainstIndex().TryGetValue((item.Question, k), out other))
                    throw new InvalidDataException($"{Against}: no answer #{k} to the question of item '{item.Id}' (\"{Short(item.Question)}\") to compare it with");
                string field = ConditionField ?? "multiplier";
                condition = item.Field(field) ?? (ConditionField is null ? "all" : throw new InvalidDataException($"{Input}: item '{item.Id}' has no field '{field}' (--condition)"));
            }
            foreach (Rubric r in Rubrics)
                yield return r.Kind == ScorerKind.Pairwise ? new JudgeUnit(item, r, other, condition) : new JudgeUnit(item, r);
        }
    }

    Dictionary<(string, int), JudgeItem> AgainstIndex()
    {
        if (_against is not null) return _against;
        var index = new Dictionary<(string, int), JudgeItem>();
        var count = new Dictionary<string, int>();
        foreach (JudgeItem b in JudgeInput.Read(Against!, Fields))
        {
            int k = count[b.Question] = count.GetValueOrDefault(b.Question) + 1;
            index[(b.Question, k)] = b;
        }
        return _against = index;
    }

    static string Short(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
