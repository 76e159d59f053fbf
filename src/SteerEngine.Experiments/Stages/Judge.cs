namespace SteerEngine.Experiments.Stages;

/// <summary>One generated sample to judge: its question and response, and for pairwise tasks the unsteered response it is compared with.</summary>
public sealed record JudgeSample(string Id, string Question, string Response, double Multiplier, string? Baseline);

/// <summary>A judge's verdict on one sample: a score (null when the judge gave none), or for pairwise tasks the win (1, 0.5, 0); the raw reply always.</summary>
public sealed record JudgeVerdict(string Id, double? Score, double? Win, string Raw);

/// <summary>
/// Scores samples for one task; verdicts may come in any order and are written as they come. <c>output</c> is the
/// item's output file: a judge whose work outlives a process (batches submitted to a Batch API) keeps its state beside it.
/// </summary>
public interface IJudge : IDisposable
{
    IEnumerable<JudgeVerdict> Score(JudgeTask task, IReadOnlyList<JudgeSample> samples, string output);
}

/// <summary>Makes the judge an experiment's settings name (provider, model, batch).</summary>
public interface IJudgeFactory
{
    IJudge Create(JudgeSettings settings);
}

/// <summary>The judge could not be reached or could not run (provider down, no judging library): the item fails, nothing is lost.</summary>
public sealed class JudgeUnavailableException(string message, Exception? inner = null) : IOException(message, inner);
