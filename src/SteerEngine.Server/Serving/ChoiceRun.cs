using System.Runtime.CompilerServices;
using System.Threading.Channels;
using SteerEngine.Generation;

namespace SteerEngine.Server.Serving;

/// <summary>One event of a streamed request: a token of choice <see cref="Choice"/> (each token is one chunk on the wire, its text possibly empty), or its result when it finished.</summary>
public readonly record struct ChoiceEvent(int Choice, GeneratedToken? Token, GenerationResult? Result);

/// <summary>
/// A request's choices submitted to its model's engine together. All are submitted before anything is
/// sent, so a full queue is a 429, not a broken stream; if one submission fails, the others are cancelled.
/// Cancelling the token (the client went away) frees every choice's slot at the engine's next step.
/// </summary>
public sealed class ChoiceRun : IDisposable
{
    readonly CancellationTokenSource _cancel;
    readonly Channel<ChoiceEvent>? _events;
    public IReadOnlyList<Task<GenerationResult>> Results { get; }

    public ChoiceRun(GenerationEngine engine, IReadOnlyList<GenerationRequest> requests, bool stream, CancellationToken cancel)
    {
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        _events = stream ? Channel.CreateUnbounded<ChoiceEvent>(new UnboundedChannelOptions { SingleReader = true }) : null;
        var results = new List<Task<GenerationResult>>();
        try
        {
            for (int i = 0; i < requests.Count; i++)
            {
                int choice = i;
                Action<GeneratedToken>? onToken = _events is null ? null : t => _events.Writer.TryWrite(new ChoiceEvent(choice, t, null));
                results.Add(engine.Submit(requests[i], onToken, _cancel.Token));
            }
        }
        catch
        {
            _cancel.Cancel();
            _cancel.Dispose();
            throw;
        }
        Results = results;
        if (_events is not null)
            _ = Task.WhenAll(results.Select((task, choice) => task.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) _events.Writer.TryWrite(new ChoiceEvent(choice, null, t.Result));
                else _events.Writer.TryComplete(t.Exception?.InnerException ?? new OperationCanceledException());
            }, TaskScheduler.Default))).ContinueWith(_ => _events.Writer.TryComplete(), TaskScheduler.Default);
    }

    /// <summary>Tokens and results in the order the engine produced them.</summary>
    public async IAsyncEnumerable<ChoiceEvent> Events([EnumeratorCancellation] CancellationToken cancel = default)
    {
        await foreach (ChoiceEvent e in _events!.Reader.ReadAllAsync(cancel)) yield return e;
    }

    public async Task<GenerationResult[]> AllAsync() => await Task.WhenAll(Results);

    public void Dispose()
    {
        _cancel.Cancel();
        _cancel.Dispose();
    }
}
