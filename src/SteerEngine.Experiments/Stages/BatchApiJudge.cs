using System.ClientModel;
using System.Text.Json;
using SteerEngine.Judging.Batch;
using SteerEngine.Judging.Data;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Run;

namespace SteerEngine.Experiments.Stages;

/// <summary>
/// The judge stage through a Batch API (OpenAI's, or one that speaks it such as <c>steer serve</c>'s): an item's
/// samples go through one <see cref="BatchJudgeRun"/> whose judged records and state live beside the item's output,
/// <c>OUT.judged</c> and <c>OUT.judged.batch/</c>. A judge stage killed after submitting finds the batch ids there
/// when it is run again and polls the same batches instead of submitting anew. Once every batch is converted the
/// verdicts are handed on (the stage appends them to the item's work file) and the two are removed; samples a batch
/// gave no reply for fail the item, and the next run submits only those.
/// </summary>
public sealed class BatchApiJudge : IJudge
{
    readonly TaskRubrics _rubrics = new();
    readonly OpenAiEndpoint _endpoint;
    readonly TimeSpan _poll;

    public BatchApiJudge(JudgeSettings settings)
    {
        _endpoint = JudgeProviders.OpenAi(settings.Model, settings.BaseUrl, settings.ApiKeyEnv, new RetryOptions(settings.MaxAttempts).Timeout);
        _poll = settings.BatchPoll;
    }

    /// <summary>The judged records of an item's batch run (the judging library's format); its state is in the folder <c>.batch</c> beside it.</summary>
    public static string RecordsPath(string output) => output + ".judged";

    public IEnumerable<JudgeVerdict> Score(JudgeTask task, IReadOnlyList<JudgeSample> samples, string output)
    {
        Rubric rubric = _rubrics.Of(task);
        var units = samples.Select(s => TaskRubrics.Unit(rubric, s)).ToList();
        string records = RecordsPath(output);
        try
        {
            new BatchJudgeRun(_endpoint, poll: _poll).RunAsync(() => units, records, Prices.None, new JudgeProgress()).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is ClientResultException or HttpRequestException)
        {
            throw new JudgeUnavailableException($"judge provider 'openai' (Batch API at {_endpoint.BaseUrl}): {e.Message}", e);
        }
        var wanted = samples.Select(s => s.Id).ToHashSet();
        int failed = 0;
        string? error = null;
        foreach (JsonElement r in JudgeRecord.Read(records).ToList())
        {
            string id = r.GetProperty("item_id").GetString()!;
            if (!wanted.Contains(id)) continue; // given to the stage by an earlier run that was killed before the clean-up
            if (r.GetProperty("status").GetString() == JudgeOutcome.Failed)
            {
                failed++;
                error ??= r.TryGetProperty("error", out var e) ? e.GetString() : null;
                continue;
            }
            double? score = r.GetProperty("score").ValueKind == JsonValueKind.Number ? r.GetProperty("score").GetDouble() : null;
            string? text = r.TryGetProperty("text_answer", out var t) ? t.GetString() : null;
            yield return TaskRubrics.Verdict(rubric, id, score, text, r.GetProperty("replies").EnumerateArray().Select(x => x.GetString()));
        }
        File.Delete(records);
        Directory.Delete(BatchJudgeRun.StateDirectory(records), recursive: true);
        if (failed > 0)
            throw new JudgeUnavailableException($"judge provider 'openai' (Batch API at {_endpoint.BaseUrl}): {failed} of {samples.Count} samples got no verdict ({error}); " +
                                                "run the judge stage again to submit them anew");
    }

    public void Dispose() { }
}
