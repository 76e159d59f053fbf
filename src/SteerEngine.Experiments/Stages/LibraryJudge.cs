using System.Text.Json.Nodes;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Experiments.Stages;

/// <summary>
/// The judge stage's judge: the judging library's provider (openai, anthropic or local:MODEL_DIR, with its retry
/// pipeline) and each task's rubric file. Samples go to the provider a few at a time, so a local judge batches them
/// and a remote one has several calls in flight; verdicts come back in the samples' order. A call that fails after
/// the provider's retries ends the item with <see cref="JudgeUnavailableException"/>: the verdicts already given stay.
/// </summary>
public sealed class LibraryJudge : IJudge
{
    const int InFlight = 32;
    readonly IJudgeProvider _provider;
    readonly string _name;
    readonly Dictionary<string, Rubric> _rubrics = [];

    public LibraryJudge(JudgeSettings settings)
    {
        _name = settings.Provider;
        try
        {
            _provider = JudgeProviders.Open(settings.Provider, settings.Model, settings.BaseUrl, settings.ApiKeyEnv, new RetryOptions(settings.MaxAttempts), InFlight);
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException or Model.ModelFormatException)
        {
            throw new JudgeUnavailableException($"judge provider '{settings.Provider}': {e.Message}", e);
        }
    }

    /// <summary>The judges of this build: the judging library's.</summary>
    public static IJudgeFactory Factory { get; } = new LibraryJudgeFactory();


    sealed class LibraryJudgeFactory : IJudgeFactory
    {
        public IJudge Create(JudgeSettings settings) => new LibraryJudge(settings);
    }

    public IEnumerable<JudgeVerdict> Score(JudgeTask task, IReadOnlyList<JudgeSample> samples)
    {
        Rubric rubric = RubricOf(task);
        for (int first = 0; first < samples.Count; first += InFlight)
        {
            var calls = samples.Skip(first).Take(InFlight).Select(s => Judge(rubric, s)).ToList();
            foreach (var call in calls) yield return call.GetAwaiter().GetResult();
        }
    }

    Rubric RubricOf(JudgeTask task)
    {
        if (_rubrics.TryGetValue(task.Name, out Rubric? r)) return r;
        r = RubricFile.Load(task.Rubric);
        ScorerKind? wanted = task.Scorer switch { null => null, "rating" => ScorerKind.Rating, "pairwise" => ScorerKind.Pairwise, _ => ScorerKind.Weighted };
        if (wanted is not null && r.Kind != wanted)
            throw new InvalidDataException($"{task.Rubric}: the rubric's kind is {r.Kind.ToString().ToLowerInvariant()}, but task '{task.Name}' asks for the {task.Scorer} scorer");
        return _rubrics[task.Name] = r;
    }

    async Task<JudgeVerdict> Judge(Rubric rubric, JudgeSample s)
    {
        JudgeItem Item(string id, string answer) => new(0, id, s.Question, answer, new JsonObject());
        if (rubric.Kind == ScorerKind.Pairwise && s.Baseline is null)
            throw new InvalidDataException($"pairwise task '{rubric.Name}' needs the multiplier-0 sample of each question to compare with; the sweep has no multiplier 0");
        var unit = new JudgeUnit(Item(s.Id, s.Response), rubric, s.Baseline is null ? null : Item(s.Id + "#baseline", s.Baseline));
        var requests = unit.Requests();
        var replies = new JudgeReply?[requests.Count];
        var errors = new string?[requests.Count];
        for (int k = 0; k < requests.Count; k++)
        {
            try
            {
                replies[k] = await _provider.CompleteAsync(requests[k].Request, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                errors[k] = e.Message; // what the provider's retries could not get past: connection refused, HTTP 401, ...
            }
        }
        JudgeOutcome o = UnitScoring.Interpret(unit, replies, errors);
        if (o.Status == JudgeOutcome.Failed) throw new JudgeUnavailableException($"judge provider '{_name}': {o.Error}");
        string raw = string.Join(" | ", o.Replies.Select(r => r ?? ""));
        return rubric.Kind == ScorerKind.Pairwise
            ? new JudgeVerdict(s.Id, null, o.Score, raw)
            : new JudgeVerdict(s.Id, o.Score, null, o.TextAnswer is null ? raw : $"{o.TextAnswer} ({raw})");
    }

    public void Dispose() => _provider.Dispose();
}
