namespace SteerEngine.Experiments.Report;

/// <summary>How candidates are ranked: which task is the trait and which the coherence, the floor and the weights.</summary>
public sealed record RankingOptions
{
    /// <summary>The trait task; null picks the first task (by name) that is not the coherence task.</summary>
    public string? Trait { get; init; }
    public string Coherence { get; init; } = "coherence";
    /// <summary>A condition whose mean coherence is below the floor counts 0 toward its candidate's area.</summary>
    public double Floor { get; init; } = 50;
    public double TraitWeight { get; init; } = 1;
    public double CoherenceWeight { get; init; }
    /// <summary>Floors of the sensitivity table.</summary>
    public IReadOnlyList<double> SensitivityFloors { get; init; } = [0, 25, 50, 60, 70, 80, 90];
}

/// <summary>The mean score of one task under one condition.</summary>
public sealed record ConditionSummary(Condition Condition, string Task, MeanInterval Score);

/// <summary>
/// A candidate's place in the ranking: the area under its weighted trait curve (w_t·trait + w_c·coherence at each
/// multiplier, 0 where coherence is below the floor), divided by the multiplier span — the curve's average level —
/// and how many of its multipliers passed the floor.
/// </summary>
public sealed record RankedCandidate(int Rank, Candidate Candidate, double Area, int Coherent, int Multipliers);

/// <summary>A condition's mean trait and coherence, and whether no other condition beats it on both.</summary>
public sealed record TradeOffPoint(Condition Condition, double Trait, double Coherence, bool OnFrontier);

/// <summary>The numbers a report shows: means with intervals, the ranking at the chosen floor and at others, the Pareto set.</summary>
public sealed class StudyAnalysis
{
    public required string? TraitTask { get; init; }
    public required string? CoherenceTask { get; init; }
    public required RankingOptions Options { get; init; }
    public required IReadOnlyList<ConditionSummary> Summaries { get; init; }
    public required IReadOnlyList<RankedCandidate> Ranking { get; init; }
    /// <summary>Floor → the ranking at that floor.</summary>
    public required IReadOnlyList<(double Floor, IReadOnlyList<RankedCandidate> Ranking)> Sensitivity { get; init; }
    public required IReadOnlyList<TradeOffPoint> TradeOff { get; init; }

    public IEnumerable<TradeOffPoint> ParetoSet => TradeOff.Where(p => p.OnFrontier);

    public static StudyAnalysis Of(StudyData data, RankingOptions options)
    {
        var summaries = data.Scores
            .GroupBy(s => (s.Condition, s.Task))
            .Select(g => new ConditionSummary(g.Key.Condition, g.Key.Task, Statistics.Mean(g.Select(s => s.Score).ToList())))
            .OrderBy(s => s.Task, StringComparer.Ordinal).ThenBy(s => s.Condition.Candidate).ThenBy(s => s.Condition.Multiplier)
            .ToList();
        var tasks = data.Tasks;
        if (options.Trait is string t && !tasks.Contains(t))
            throw new ArgumentException($"trait task '{t}' has no scores in this tree (tasks: {string.Join(", ", tasks)})");
        string? trait = options.Trait ?? tasks.FirstOrDefault(x => x != options.Coherence);
        string? coherence = tasks.Contains(options.Coherence) ? options.Coherence : null;
        if (coherence is null && tasks.Count > 0) data.Notes.Add($"no '{options.Coherence}' task: the ranking applies no coherence floor");

        var ranking = trait is null ? [] : Rank(summaries, trait, coherence, options, options.Floor);
        var sensitivity = trait is null ? [] : options.SensitivityFloors
            .Select(f => (f, (IReadOnlyList<RankedCandidate>)Rank(summaries, trait, coherence, options, f))).ToList();
        return new StudyAnalysis
        {
            TraitTask = trait, CoherenceTask = coherence, Options = options, Summaries = summaries,
            Ranking = ranking, Sensitivity = sensitivity, TradeOff = TradeOffPoints(summaries, trait, coherence),
        };
    }

    public MeanInterval? Find(Condition condition, string task) =>
        Summaries.FirstOrDefault(s => s.Condition == condition && s.Task == task)?.Score;

    static List<RankedCandidate> Rank(List<ConditionSummary> summaries, string trait, string? coherence, RankingOptions o, double floor)
    {
        var coherenceOf = coherence is null ? [] : summaries.Where(s => s.Task == coherence).ToDictionary(s => s.Condition, s => s.Score.Mean);
        var rows = new List<(Candidate Candidate, double Area, int Coherent, int Count)>();
        foreach (var g in summaries.Where(s => s.Task == trait).GroupBy(s => s.Condition.Candidate))
        {
            var points = g.OrderBy(s => s.Condition.Multiplier).ToList();
            var values = new List<double>();
            int coherent = 0;
            foreach (ConditionSummary p in points)
            {
                double? c = coherence is null ? null : coherenceOf.TryGetValue(p.Condition, out double cv) ? cv : double.NaN;
                bool passes = c is null || c >= floor; // a condition with no coherence score fails a floor that exists
                if (passes) coherent++;
                values.Add(passes ? o.TraitWeight * p.Score.Mean + o.CoherenceWeight * (c ?? 0) : 0);
            }
            rows.Add((g.Key, Statistics.NormalizedArea(points.Select(p => p.Condition.Multiplier).ToList(), values), coherent, points.Count));
        }
        return rows.OrderByDescending(r => r.Area).ThenBy(r => r.Candidate)
            .Select((r, i) => new RankedCandidate(i + 1, r.Candidate, r.Area, r.Coherent, r.Count)).ToList();
    }

    static List<TradeOffPoint> TradeOffPoints(List<ConditionSummary> summaries, string? trait, string? coherence)
    {
        if (trait is null || coherence is null) return [];
        var coh = summaries.Where(s => s.Task == coherence).ToDictionary(s => s.Condition, s => s.Score.Mean);
        var points = summaries.Where(s => s.Task == trait && coh.ContainsKey(s.Condition))
            .Select(s => (s.Condition, Trait: s.Score.Mean, Coherence: coh[s.Condition])).ToList();
        return points.Select(p => new TradeOffPoint(p.Condition, p.Trait, p.Coherence,
            !points.Any(q => q.Trait >= p.Trait && q.Coherence >= p.Coherence && (q.Trait > p.Trait || q.Coherence > p.Coherence)))).ToList();
    }
}
