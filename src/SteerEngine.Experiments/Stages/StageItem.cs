namespace SteerEngine.Experiments.Stages;

/// <summary>The three stages of a study, in the order their outputs feed each other.</summary>
public static class StageNames
{
    public const string Train = "train", Generate = "generate", Judge = "judge";
    public static readonly string[] All = [Train, Generate, Judge];
}

/// <summary>
/// One unit of a stage's work (Snakemake's rule instance): done when its output is complete, runnable when its
/// inputs are, claimed through the lock file beside its output. <see cref="Inputs"/> are the outputs of the earlier
/// stage's items it needs, so a failure there can be told apart from work still to come.
/// </summary>
public sealed class StageItem
{
    public required string Stage { get; init; }
    public required string Name { get; init; }
    /// <summary>The output whose lock (.lock), work in progress (.partial) and failure note (.failed) sit beside it.</summary>
    public required string Output { get; init; }
    public required Func<bool> IsDone { get; init; }
    public required Func<bool> InputsReady { get; init; }
    public IReadOnlyList<string> Inputs { get; init; } = [];
    public required Action<ItemLock> Run { get; init; }

    public string LockPath => ExperimentLayout.Lock(Output);
    public string FailurePath => ExperimentLayout.Failure(Output);

    public override string ToString() => $"{Stage} {Name}";
}
