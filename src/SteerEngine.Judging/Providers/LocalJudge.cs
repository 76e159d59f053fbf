using System.Collections.Concurrent;
using SteerEngine.Generation;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Judging.Scoring;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Tokenization;

namespace SteerEngine.Judging.Providers;

/// <summary>
/// The engine itself as the judge, in-process (<c>local:MODEL_DIR</c>): no HTTP. Calls from any
/// number of concurrent workers queue up; one thread takes up to <c>maxBatch</c> of them at a time
/// and runs them as one batch — a forward pass over the prompts when only the first token's top
/// log-probs are wanted (the weighted scorer), else greedy generation through the continuous-batching
/// generator. The model is touched by that thread only.
/// </summary>
public sealed class LocalJudge : IJudgeProvider
{
    sealed record Pending(JudgeRequest Request, TaskCompletionSource<JudgeReply> Reply, CancellationToken Cancel);

    readonly LanguageModel _lm;
    readonly bool _ownsModel;
    readonly int _maxBatch;
    readonly BlockingCollection<Pending> _queue = new();
    readonly Thread _worker;

    public LocalJudge(LanguageModel lm, int maxBatch = 32, bool ownsModel = false)
    {
        _lm = lm;
        _ownsModel = ownsModel;
        _maxBatch = Math.Max(1, maxBatch);
        _worker = new Thread(Work) { IsBackground = true, Name = "local judge" };
        _worker.Start();
    }

    public static LocalJudge Open(string directory, int maxBatch) =>
        new(LanguageModel.Load(directory, w => Console.Error.WriteLine($"warning: {w}")), maxBatch, ownsModel: true);

    public string Name => "local";
    public string Model => Path.GetFileName(Path.TrimEndingDirectorySeparator(_lm.Directory));
    public bool SupportsLogprobs => true;

    public Task<JudgeReply> CompleteAsync(JudgeRequest request, CancellationToken cancel)
    {
        var tcs = new TaskCompletionSource<JudgeReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Add(new Pending(request, tcs, cancel), CancellationToken.None);
        return tcs.Task.WaitAsync(cancel);
    }

    void Work()
    {
        foreach (Pending first in _queue.GetConsumingEnumerable())
        {
            var batch = new List<Pending> { first };
            while (batch.Count < _maxBatch && _queue.TryTake(out Pending? more)) batch.Add(more);
            batch.RemoveAll(p => p.Cancel.IsCancellationRequested && p.Reply.TrySetCanceled(p.Cancel));
            try
            {
                var encoded = batch.Select(p => Encode(p.Request)).ToList();
                var firstTokenOnly = batch.Select((p, i) => (p, i)).Where(x => x.p.Request.MaxTokens == 1 && x.p.Request.TopLogprobs > 0).ToList();
                var generate = batch.Select((p, i) => (p, i)).Where(x => !(x.p.Request.MaxTokens == 1 && x.p.Request.TopLogprobs > 0)).ToList();
                if (firstTokenOnly.Count > 0)
                {
                    var replies = FirstToken(firstTokenOnly.Select(x => (encoded[x.i], x.p.Request.TopLogprobs)).ToList());
                    for (int k = 0; k < firstTokenOnly.Count; k++) firstTokenOnly[k].p.Reply.TrySetResult(replies[k]);
                }
                if (generate.Count > 0)
                {
                    var replies = Generate(generate.Select(x => (encoded[x.i], x.p.Request)).ToList());
                    for (int k = 0; k < generate.Count; k++) generate[k].p.Reply.TrySetResult(replies[k]);
                }
            }
            catch (Exception e)
            {
                foreach (Pending p in batch) p.Reply.TrySetException(new JudgeCallException($"local judge: {e.Message}", 0, transient: false, inner: e));
            }
        }
    }

    int[] Encode(JudgeRequest r)
    {
        var messages = r.Messages.Select(t => new ChatMessage(t.Role, t.Content)).ToList();
        string text = _lm.Template.Render(messages, addGenerationPrompt: true,
            new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
        return _lm.Tokenizer.Encode(text, addBos: false);
    }

    /// <summary>One forward pass over the prompts; each reply is the most likely first token and the top-k log-probs of the last position.</summary>
    List<JudgeReply> FirstToken(List<(int[] Prompt, int TopK)> items)
    {
        IForwardModel model = _lm.Model;
        var seqs = items.Select(x => new ForwardSequence(model.NewCache(x.Prompt.Length + 1), x.Prompt)).ToList();
        float[][] logits = model.Forward(seqs); // one row (V) per sequence: the last position's
        var replies = new List<JudgeReply>(items.Count);
        for (int s = 0; s < items.Count; s++)
        {
            var top = TopLogprobs.Of(logits[s], items[s].TopK);
            var list = top.Select(t => new TopLogprob(_lm.Tokenizer.DecodeToken(t.Token), t.Logprob)).ToList();
            replies.Add(new JudgeReply(list.Count > 0 ? list[0].Token : "", list, items[s].Prompt.Length, 1));
        }
        return replies;
    }

    /// <summary>Greedy generation through the continuous-batching generator.</summary>
    List<JudgeReply> Generate(List<(int[] Prompt, JudgeRequest Request)> items)
    {
        var requests = items.Select(x => new GenerationRequest(x.Prompt, x.Request.MaxTokens, new SamplingOptions(0f), null, 0, _lm.Tokenizer.EosTokenIds)
        {
            Logprobs = x.Request.TopLogprobs > 0,
        }).ToList();
        var generator = new Generator(_lm.Model, _lm.Tokenizer, new SchedulerOptions(MaxSequences: Math.Max(1, items.Count), MaxTokensPerStep: 4096));
        var results = generator.Generate(requests);
        return results.Select((r, i) => new JudgeReply(r.Text ?? "", null, items[i].Prompt.Length, r.Tokens.Length)).ToList();
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _worker.Join();
        if (_ownsModel) _lm.Dispose();
    }
}
