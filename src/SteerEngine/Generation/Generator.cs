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
    /// <summary>Per monitor (request order), one projection per generated token.</summary>
    public float[][]? Projections { get; init; }
    /// <summary>The decoded response (special tokens skipped, cut at a stop string) when the generator has a tokenizer.</summary>
    public string? Text { get; init; }
    public object? Tag { get; init; }
}

/// <summary>Limits of one forward step: how many sequences decode together and how many tokens a step may carry.</summary>
public sealed record SchedulerOptions(int MaxSequences = 64, int MaxTokensPerStep = 512);

/// <summary>
/// Continuous batching: sequences join as others finish, long prompts are prefilled in chunks
/// mixed with other sequences' decode steps, and requests are pulled from the source only when a
/// slot is free (back-pressure: a million-request job holds at most MaxSequences caches).
/// Sampling stays out of the model: logits in, token out.
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

    sealed class Sequence(int index, GenerationRequest request, KvCache cache, SequenceSteering? steering)
    {
        public int Index { get; } = index;
        public GenerationRequest Request { get; } = request;
        public KvCache Cache { get; } = cache;
        public SequenceSteering? Steering { get; } = steering;
        public SplitMix64 Rng = new(request.Seed);
        public int Prefilled;
        public readonly List<int> Output = [];
        public readonly List<float> Logprobs = [];
        public HashSet<int>? History;
        public List<float>[]? Projections;
        public bool Decoding => Prefilled == Request.PromptTokens.Length;
    }

    /// <summary>Yields each result as its sequence finishes (not in request order; see <see cref="GenerationResult.Index"/>).</summary>
    public IEnumerable<GenerationResult> Stream(IEnumerable<GenerationRequest> requests, Action<int, int>? onToken = null)
    {
        using IEnumerator<GenerationRequest> source = requests.GetEnumerator();
        var active = new List<Sequence>();
        var slots = new List<float[]>();   // one (1, V) logits buffer per batch slot, kept across steps
        int next = 0;
        bool more = true;
        while (true)
        {
            while (more && active.Count < _options.MaxSequences)
            {
                if (!(more = source.MoveNext())) break;
                GenerationResult? immediate = Admit(next++, source.Current, active);
                if (immediate is not null) yield return immediate;
            }
            if (active.Count == 0) yield break;

            // Every decoding sequence gets its token; prompts fill the rest of the step's token budget.
            var batch = new List<(Sequence Seq, ForwardSequence Part, bool Samples)>();
            int budget = _options.MaxTokensPerStep;
            foreach (Sequence s in active.Where(s => s.Decoding))
            {
                batch.Add((s, new ForwardSequence(s.Cache, [s.Output[^1]], s.Steering), true));
                budget--;
            }
            foreach (Sequence s in active.Where(s => !s.Decoding))
            {
                if (budget <= 0 && batch.Count > 0) break;
                int remaining = s.Request.PromptTokens.Length - s.Prefilled;
                int n = Math.Min(remaining, Math.Max(1, budget));
                batch.Add((s, new ForwardSequence(s.Cache, s.Request.PromptTokens[s.Prefilled..(s.Prefilled + n)], s.Steering), n == remaining));
                s.Prefilled += n;
                budget -= n;
            }

            var sink = batch.Any(b => b.Seq.Projections is not null) ? new MonitorSink(batch.Select(b => b.Seq).ToList()) : null;
            while (slots.Count < batch.Count) slots.Add(GC.AllocateUninitializedArray<float>(model.Config.VocabSize));
            float[][] logits = slots.GetRange(0, batch.Count).ToArray();
            model.ForwardInto(batch.Select(b => b.Part).ToList(), logits, sink);
            TokensProcessed += batch.Sum(b => b.Part.Tokens.Length);
            for (int b = 0; b < batch.Count; b++)
            {
                if (!batch[b].Samples) continue;
                Sequence s = batch[b].Seq;
                GenerationResult? done = Step(s, logits[b], onToken);
                if (done is null) continue;
                active.Remove(s);
                yield return done;
            }
        }
    }

    GenerationResult? Admit(int index, GenerationRequest r, List<Sequence> active)
    {
        if (r.PromptTokens.Length == 0) throw new ArgumentException($"request {index} has an empty prompt");
        r.Sampling.Validate();
        var steering = r.Steering is { Count: > 0 } adds ? new SequenceSteering(adds, r.PromptTokens.Length) : null;
        steering?.Validate(model.Config.NumLayers, model.Config.HiddenSize);
        if (r.MaxNewTokens <= 0)
            return new GenerationResult([], "length") { Index = index, PromptTokens = r.PromptTokens.Length, Text = "", Tag = r.Tag };
        var s = new Sequence(index, r, model.NewCache(r.PromptTokens.Length + r.MaxNewTokens), steering);
        if (r.Sampling.RepetitionPenalty != 1f) s.History = [.. r.PromptTokens];
        if (r.Monitors is { Count: > 0 } monitors)
        {
            foreach (ProjectionMonitor m in monitors)
            {
                if (m.Layer < 0 || m.Layer >= model.Config.NumLayers) throw new ArgumentException($"monitor '{m.Name}': layer {m.Layer} is out of range 0..{model.Config.NumLayers - 1}");
                if (m.Vector.Length != model.Config.HiddenSize) throw new ArgumentException($"monitor '{m.Name}': vector has {m.Vector.Length} elements, hidden size is {model.Config.HiddenSize}");
                if (!(System.Numerics.Tensors.TensorPrimitives.Norm(m.Vector) > 0)) throw new ArgumentException($"monitor '{m.Name}': vector is zero or not finite");
            }
            s.Projections = monitors.Select(_ => new List<float>()).ToArray();
        }
        active.Add(s);
        return null;
    }

    /// <summary>Samples the sequence's next token; returns its result if that finished it.</summary>
    GenerationResult? Step(Sequence s, float[] logits, Action<int, int>? onToken)
    {
        GenerationRequest r = s.Request;
        // Log-probs are of the model's distribution, before the repetition penalty edits the logits.
        float[]? raw = r.Logprobs && s.History is not null ? (float[])logits.Clone() : null;
        int token = Sampler.Sample(logits, r.Sampling, s.Rng.NextOpenUnit(), s.History);
        if (r.Logprobs) s.Logprobs.Add((float)Sampler.LogProb(raw ?? logits, token));
        s.Output.Add(token);
        s.History?.Add(token);
        onToken?.Invoke(s.Index, token);

        string? text = null, finish = null;
        if (r.StopTokens?.Contains(token) == true) finish = "stop";
        else if (r.StopStrings is { Count: > 0 } stops && tokenizer is not null)
        {
            text = tokenizer.Decode(s.Output.ToArray(), skipSpecialTokens: true);
            foreach (string stop in stops)
            {
                int at = text.IndexOf(stop, StringComparison.Ordinal);
                if (at < 0) continue;
                text = text[..at];
                finish = "stop";
                break;
            }
        }
        if (finish is null && s.Output.Count >= r.MaxNewTokens) finish = "length";
        if (finish is null) return null;
        return new GenerationResult(s.Output.ToArray(), finish)
        {
            Index = s.Index,
            PromptTokens = r.PromptTokens.Length,
            TokenLogprobs = r.Logprobs ? s.Logprobs.ToArray() : null,
            Projections = s.Projections?.Select(p => p.Take(s.Output.Count).ToArray()).ToArray(),
            Text = text ?? tokenizer?.Decode(s.Output.ToArray(), skipSpecialTokens: true),
            Tag = r.Tag,
        };
    }

    /// <summary>Computes monitored projections from the residual stream as the forward pass goes by.</summary>
    sealed class MonitorSink(List<Sequence> segments) : Capture.IHiddenStateSink
    {
        public void Record(int entry, ReadOnlySpan<float> states, Capture.BatchLayout layout)
        {
            int hidden = states.Length / layout.Rows;
            for (int r = 0; r < layout.Rows; r++)
            {
                Sequence s = segments[layout.SequenceOfRow[r]];
                if (s.Projections is null || layout.PositionOfRow[r] < s.Request.PromptTokens.Length - 1) continue;
                var monitors = s.Request.Monitors!;
                for (int m = 0; m < monitors.Count; m++)
                {
                    if (monitors[m].Layer + 1 != entry) continue;
                    float[] v = monitors[m].Vector;
                    ReadOnlySpan<float> h = states.Slice(r * hidden, hidden);
                    float norm = System.Numerics.Tensors.TensorPrimitives.Norm(v);
                    s.Projections[m].Add(System.Numerics.Tensors.TensorPrimitives.Dot(h, v) / norm);
                }
            }
        }
    }
}
