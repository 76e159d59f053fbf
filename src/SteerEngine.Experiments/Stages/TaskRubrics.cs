using System.Text.Json.Nodes;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;
using SteerEngine.Judging.Scoring;

namespace SteerEngine.Experiments.Stages;

/// <summary>
/// Where an experiment's judge task meets the judging library, for live and batch judging alike: the task's rubric
/// (loaded once, its kind checked against the task's scorer), a sample as a judge unit, and a unit's outcome as a verdict.
/// </summary>
public sealed class TaskRubrics
{
    readonly Dictionary<string, Rubric> _rubrics = [];

    public Rubric Of(JudgeTask task)
    {
        if (_rubrics.TryGetValue(task.Name, out Rubric? r)) return r;
        r = RubricFile.Load(task.Rubric);
        ScorerKind? wanted = task.Scorer switch { null => null, "rating" => ScorerKind.Rating, "pairwise" => ScorerKind.Pairwise, _ => ScorerKind.Weighted };
        if (wanted is not null && r.Kind != wanted)
            throw new InvalidDataException($"{task.Rubric}: the rubric's kind is {r.Kind.ToString().ToLowerInvariant()}, but task '{task.Name}' asks for the {task.Scorer} scorer");
        return _rubrics[task.Name] = r;
    }

    /// <summary>The sample under the rubric; a pairwise unit compares it with the unsteered sample of its question.</summary>
    public static JudgeUnit Unit(Rubric rubric, JudgeSample s)
    {
        JudgeItem Item(string id, string answer) => new(0, id, s.Question, answer, new JsonObject());
        if (rubric.Kind == ScorerKind.Pairwise && s.Baseline is null)
            throw new InvalidDataException($"pairwise task '{rubric.Name}' needs the multiplier-0 sample of each question to compare with; the sweep has no multiplier 0");
        return new JudgeUnit(Item(s.Id, s.Response), rubric, s.Baseline is null ? null : Item(s.Id + "#baseline", s.Baseline));
    }

    /// <summary>A scored unit as a verdict: pairwise units give their win share, the others their score, and the raw replies always.</summary>
    public static JudgeVerdict Verdict(Rubric rubric, string id, double? score, string? textAnswer, IEnumerable<string?> replies)
    {
        string raw = string.Join(" | ", replies.Select(r => r ?? ""));
        return rubric.Kind == ScorerKind.Pairwise
            ? new JudgeVerdict(id, null, score, raw)
            : new JudgeVerdict(id, score, null, textAnswer is null ? raw : $"{textAnswer} ({raw})");
    }
}
