using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Steering;
using SteerEngine.Tokenization;

namespace SteerEngine.Generation;

/// <summary>One sequence to generate: its prompt tokens, sampling, steering and seed.</summary>
public sealed record GenerationRequest(
    int[] PromptTokens,
    int MaxNewTokens,
    SamplingOptions Sampling,
    IReadOnlyList<SteeringAdd>? Steering = null,
    ulong Seed = 0,
    IReadOnlyCollection<int>? StopTokens = null)
{
    /// <summary>Generation ends when the decoded response contains one of these; the text is cut before it.</summary>
    public IReadOnlyList<string>? StopStrings { get; init; }
    /// <summary>Record log p(token) of every generated token under the unsteered-by-sampling distribution (raw logits).</summary>
    public bool Logprobs { get; init; }
    /// <summary>Also record the most likely alternatives at each generated token (0–20; more than 0 implies <see cref="Logprobs"/>).</summary>
    public int TopLogprobs { get; init; }
    /// <summary>Score the prompt too: log p of every prompt token after the first given the ones before it (and <see cref="TopLogprobs"/> alternatives).</summary>
    public bool PromptLogprobs { get; init; }
    /// <summary>Anything the caller wants back with the result (a job's record key, say).</summary>
    public object? Tag { get; init; }
    /// <summary>Directions to monitor: each generated token gets (h·v)/‖v‖ at each monitor's layer.</summary>
    public IReadOnlyList<ProjectionMonitor>? Monitors { get; init; }
}

/// <summary>
/// Per-token monitoring of a direction at the output of block <see cref="Layer"/> (hidden-states entry
/// Layer+1). Token i's value is taken from the hidden state that predicted it: position P−1+i.
/// </summary>
public sealed record ProjectionMonitor(string Name, int Layer, float[] Vector);

public sealed record GenerationResult(int[] Tokens, string FinishReason)
{
    public int Index { get; init; }
    public int PromptTokens { get; init; }
    public float[]? TokenLogprobs { get; init; }
    /// <summary>Per generated token, the request's <see cref="GenerationRequest.TopLogprobs"/> most likely tokens, most likely first.</summary>
    public TokenLogprob[][]? TopLogprobs { get; init; }
    /// <summary>With <see cref="GenerationRequest.PromptLogprobs"/>: log p of prompt tokens 1..P−1 (token 0 has no context).</summary>
    public float[]? PromptLogprobs { get; init; }
    /// <summary>With <see cref="GenerationRequest.PromptLogprobs"/> and top log-probs: the alternatives at prompt tokens 1..P−1.</summary>
    public TokenLogprob[][]? PromptTopLogprobs { get; init; }
    /// <summary>Per monitor (request order), one projection per generated token.</summary>
    public float[][]? Projections { get; init; }
    /// <summary>With conditional steering: per distinct condition (in order of first appearance), its score and whether it held.</summary>
    public IReadOnlyList<ConditionOutcome>? Conditions { get; init; }
    /// <summary>The decoded response (special tokens skipped, cut at a stop string) when the generator has a tokenizer.</summary>
    public string? Text { get; init; }
    public object? Tag { get; init; }
}

/// <summary>
/// Limits of one forward step: how many sequences decode together and how many tokens a step may
/// carry; and whether rows with the same prompt prefix compute it once (results are the same bits either way).
/// </summary>
public sealed record SchedulerOptions(int MaxSequences = 64, int MaxTokensPerStep = 512, bool SharePrefixes = true);

/// <summary>
/// Continuous batching over a request list: sequences join as others finish, long prompts are
/// prefilled in chunks mixed with other sequences' decode steps, and requests are pulled from the
/// source only when a slot is free (back-pressure: a million-request job holds at most MaxSequences
/// caches). The steps themselves are <see cref="ContinuousBatch"/>'s.
/// </summary>
public sealed class Generator(IForwardModel model, TextTokenizer? tokenizer = null, SchedulerOptions? options = null)
{
    readonly SchedulerOptions _options = options ?? new SchedulerOptions();

    /// <summary>Total tokens the model has processed (prefill + decode), for throughput reports.</summary>
    public long TokensProcessed { get; private set; }

    /// <summary>Generates every request and returns results in request order.</summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<GenerationRequest> requests, Action<int, int>? onToken = null)
    {
        var results = new GenerationResult[requests.Count];
        foreach (GenerationResult r in Stream(requests, onToken)) results[r.Index] = r;
        return results;
    }

    /// <summary>Yields each result as its sequence finishes (not in request order; see <see cref="GenerationResult.Index"/>).</summary>
    public IEnumerable<GenerationResult> Stream(IEnumerable<GenerationRequest> requests, Action<int, int>? onToken = null)
    {
        using IEnumerator<GenerationRequest> source = requests.GetEnumerator();
        var batch = new ContinuousBatch(model, tokenizer, _options);
        Action<GeneratedToken>? tokenSink = onToken is null ? null : t => onToken(t.Index, t.Token);
        int next = 0;
        bool more = true;
        while (true)
        {
            while (more && !batch.IsFull)
            {
                if (!(more = source.MoveNext())) break;
                GenerationResult? immediate = batch.Admit(next++, source.Current);
                if (immediate is not null) yield return immediate;
            }
            if (batch.Count == 0) yield break;
            long before = batch.TokensProcessed;
            IReadOnlyList<GenerationResult> finished = batch.Step(tokenSink);
            TokensProcessed += batch.TokensProcessed - before;
            foreach (GenerationResult r in finished) yield return r;
        }
    }
}
