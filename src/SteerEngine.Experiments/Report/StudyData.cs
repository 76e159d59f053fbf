namespace SteerEngine.Experiments.Report;

/// <summary>A trained vector of a study: one model, one steered block, one epoch of BiPO.</summary>
public sealed record Candidate(string Model, int Layer, int Epoch) : IComparable<Candidate>
{
    public string Label => $"{Model} L{Layer} ep{Epoch}";

    public int CompareTo(Candidate? other) => other is null ? 1
        : string.CompareOrdinal(Model, other.Model) is int c and not 0 ? c
        : Layer != other.Layer ? Layer.CompareTo(other.Layer) : Epoch.CompareTo(other.Epoch);
}

/// <summary>One cell of the sweep: a candidate vector at one multiplier.</summary>
public sealed record Condition(Candidate Candidate, double Multiplier)
{
    public string Label => $"{Candidate.Label} ×{Multiplier:0.###}";
}

/// <summary>One judged sample: the task's score of one generation (its id) under one condition.</summary>
public sealed record ScoreRecord(Condition Condition, string Task, string Id, double Score);

/// <summary>One pairwise judgement of a steered sample against its baseline: 1 steered wins, 0 baseline wins, 0.5 a tie.</summary>
public sealed record PairwiseRecord(Condition Condition, string Task, string Id, double Win);

/// <summary>One line of a layer's evaluation_metrics.jsonl.</summary>
public sealed record LossRecord(string Vector, int Layer, int Epoch, double TrainLoss, double? TestPositiveLoss, double? TestNegativeLoss);

/// <summary>The perplexity of one generated sample (from its "perplexity" field or its token log-probs).</summary>
public sealed record PerplexityRecord(Condition Condition, string Id, double Perplexity);

/// <summary>Everything a report reads from a study tree; <see cref="Notes"/> says what was absent or skipped.</summary>
public sealed class StudyData
{
    public string? ConfigJson { get; init; }
    public List<ScoreRecord> Scores { get; } = [];
    public List<PairwiseRecord> Pairwise { get; } = [];
    public List<LossRecord> Losses { get; } = [];
    public List<PerplexityRecord> Perplexities { get; } = [];
    public List<string> Notes { get; } = [];

    public IReadOnlyList<string> Tasks => Scores.Select(s => s.Task).Distinct().Order(StringComparer.Ordinal).ToList();
}
