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
    readonly TaskRubrics _rubrics = new();

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

    /// <summary>The judges of this build: the judging library's, live or through the Batch API as the settings say.</summary>
    public static IJudgeFactory Factory { get; } = new LibraryJudgeFactory();

    sealed class LibraryJudgeFactory : IJudgeFactory
    {
        public IJudge Create(JudgeSettings settings) => settings.Batch ? new BatchApiJudge(settings) : new LibraryJudge(settings);
    }

    public IEnumerable<JudgeVerdict> Score(JudgeTask task, IReadOnlyList<JudgeSample> samples, string output)
    {
        Rubric rubric = _rubrics.Of(task);
        for (int first = 0; first < samples.Count; first += InFlight)
        {
            var calls = samples.Skip(first).Take(InFlight).Select(s => Judge(rubric, s)).ToList();
            foreach (var call in calls) yield return call.GetAwaiter().GetResult();
        }
    }

    async Task<JudgeVerdict> Judge(Rubric rubric, JudgeSample s)
    {
        JudgeUnit unit = TaskRubrics.Unit(rubric, s);
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
        return TaskRubrics.Verdict(rubric, s.Id, o.Score, o.TextAnswer, o.Replies);
    }

    public void Dispose() => _provider.Dispose();
}
