namespace SteerEngine.Experiments;

/// <summary>
/// Where every output of a study lives, in the relationship-seeking BiPO study's layout:
/// <c>vector/{behavior}_{model}/layer{L}/vec_ep{N}_layer{L}.pt</c> with <c>evaluation_metrics.jsonl</c>,
/// <c>vector_evals/{model}/layer{L}/generations_ep{N}.jsonl</c> and <c>{task}_scores_ep{N}.jsonl</c> beside them,
/// and <c>config.json</c>, the resolved experiment.
/// </summary>
public sealed class ExperimentLayout(string root, string behavior)
{
    public string Root { get; } = Path.GetFullPath(root);

    public string Config => Path.Combine(Root, "config.json");

    public string VectorDir(string model, int layer) => Path.Combine(Root, "vector", $"{behavior}_{model}", $"layer{layer}");

    public string Vector(string model, int layer, int epoch) => Path.Combine(VectorDir(model, layer), $"vec_ep{epoch}_layer{layer}.pt");

    public string Metrics(string model, int layer) => Path.Combine(VectorDir(model, layer), Training.BipoTrainer.MetricsFileName);

    public string EvalDir(string model, int layer) => Path.Combine(Root, "vector_evals", model, $"layer{layer}");

    public string Generations(string model, int layer, int epoch) => Path.Combine(EvalDir(model, layer), $"generations_ep{epoch}.jsonl");

    public string Scores(string model, int layer, int epoch, string task) => Path.Combine(EvalDir(model, layer), $"{task}_scores_ep{epoch}.jsonl");

    /// <summary>The file an item's work in progress goes to before it is finished and renamed into place.</summary>
    public static string Partial(string output) => output + ".partial";

    public static string Lock(string output) => output + ".lock";

    /// <summary>Written when an item fails: the error, where and when; removed when the item is next claimed.</summary>
    public static string Failure(string output) => output + ".failed";

    static readonly string[] WorkEndings = [".partial", ".lock", ".failed", ".tmp", ".takeover", ".judged"];

    /// <summary>
    /// A file of an item's work rather than a finished output: work in progress, a lock or failure note, a temporary
    /// file, a batch judge's records (OUT.judged) and state (under OUT.judged.batch/), an extraction's work folder.
    /// </summary>
    public static bool IsWorkFile(string path)
    {
        if (WorkEndings.Any(e => path.EndsWith(e, StringComparison.Ordinal))) return true;
        string? dir = Path.GetDirectoryName(path);
        for (; !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
        {
            string name = Path.GetFileName(dir);
            if (name.EndsWith(".judged.batch", StringComparison.Ordinal) || name.StartsWith(".extracting.", StringComparison.Ordinal)) return true;
        }
        return false;
    }
}
