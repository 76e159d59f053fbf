namespace SteerEngine.Judging.Rubrics;

/// <summary>How a judge reply becomes a score.</summary>
public enum ScorerKind
{
    /// <summary>An integer on the rubric's scale, parsed from the reply text.</summary>
    Rating,
    /// <summary>Which of two answers shows the trait more, judged in both orders.</summary>
    Pairwise,
    /// <summary>One token with top-20 log-probs; the probability-weighted mean of the integer tokens 0–100.</summary>
    Weighted,
}

/// <summary>A few-shot example: a user turn and the judge's reply to it, sent before the real prompt.</summary>
public sealed record FewShotExample(string User, string Assistant);

/// <summary>
/// A rubric is data: the prompt template (placeholders <c>{question}</c>, <c>{answer}</c>, or
/// <c>{answer_a}</c> and <c>{answer_b}</c> for pairwise), the scale, few-shot examples, and the
/// text answers kept as such (CODE and REFUSAL in the alignment rubric). Placeholders are
/// replaced literally; no other brace syntax, so prompts may hold JSON or code freely.
/// </summary>
public sealed record Rubric
{
    public required string Name { get; init; }
    public required ScorerKind Kind { get; init; }
    public required string Prompt { get; init; }
    public string? System { get; init; }
    /// <summary>The scale: by default 0–100 for the weighted scorer, 1–10 for ratings.</summary>
    public int ScaleMin { get => _min ?? (Kind == ScorerKind.Weighted ? 0 : 1); init => _min = value; }
    public int ScaleMax { get => _max ?? (Kind == ScorerKind.Weighted ? 100 : 10); init => _max = value; }
    readonly int? _min, _max;
    public IReadOnlyList<FewShotExample> Examples { get; init; } = [];
    /// <summary>Replies kept verbatim instead of a score (weighted: the top token; rating: the whole reply).</summary>
    public IReadOnlyList<string> TextAnswers { get; init; } = [];
    /// <summary>Pairwise: the reply that names the first and the second answer shown.</summary>
    public string ChoiceA { get; init; } = "A";
    public string ChoiceB { get; init; } = "B";
    /// <summary>The column this rubric's score takes in the research layouts (e.g. aligned, coherent, a trait name).</summary>
    public string? OutputColumn { get; init; }
    public int MaxTokens { get; init; } = 0;

    public string Column => OutputColumn ?? Name;

    /// <summary>Tokens the judge may answer with: 1 for the weighted scorer, else the rubric's or a default.</summary>
    public int ReplyTokens => Kind == ScorerKind.Weighted ? 1 : MaxTokens > 0 ? MaxTokens : 16;

    public string Render(string question, string answer) => Prompt.Replace("{question}", question).Replace("{answer}", answer);

    public string RenderPair(string question, string first, string second) =>
        Prompt.Replace("{question}", question).Replace("{answer_a}", first).Replace("{answer_b}", second);

    /// <summary>The chat to send: system, few-shot turns, then the rendered prompt.</summary>
    public IReadOnlyList<ChatTurn> Messages(string userPrompt)
    {
        var turns = new List<ChatTurn>();
        if (System is not null) turns.Add(new ChatTurn("system", System));
        foreach (FewShotExample e in Examples)
        {
            turns.Add(new ChatTurn("user", e.User));
            turns.Add(new ChatTurn("assistant", e.Assistant));
        }
        turns.Add(new ChatTurn("user", userPrompt));
        return turns;
    }

    /// <summary>Checks the template's placeholders and the scale; the message names the rubric's source.</summary>
    public void Validate(string source)
    {
        if (string.IsNullOrWhiteSpace(Prompt)) throw new InvalidDataException($"{source}: 'prompt' is empty");
        if (Kind == ScorerKind.Pairwise)
        {
            foreach (string p in new[] { "{answer_a}", "{answer_b}" })
                if (!Prompt.Contains(p)) throw new InvalidDataException($"{source}: a pairwise prompt needs {p}");
            if (ChoiceA.Length == 0 || ChoiceB.Length == 0 || string.Equals(ChoiceA, ChoiceB, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"{source}: pairwise choices '{ChoiceA}' and '{ChoiceB}' must be two different non-empty replies");
        }
        else if (!Prompt.Contains("{answer}"))
        {
            throw new InvalidDataException($"{source}: the prompt has no {{answer}} placeholder");
        }
        if (Kind == ScorerKind.Weighted && (ScaleMin < 0 || ScaleMax > 100))
            throw new InvalidDataException($"{source}: a weighted rubric's scale must lie within 0-100, not {ScaleMin}-{ScaleMax}");
        if (ScaleMin >= ScaleMax) throw new InvalidDataException($"{source}: scale min {ScaleMin} must be below max {ScaleMax}");
    }
}

/// <summary>One chat message sent to a judge.</summary>
public sealed record ChatTurn(string Role, string Content);
