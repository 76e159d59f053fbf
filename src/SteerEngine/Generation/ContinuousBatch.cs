using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Steering;
using SteerEngine.Tokenization;

namespace SteerEngine.Generation;

/// <summary>One token as it is generated: which sequence, the token, and its log-probs when the request asked.</summary>
public readonly record struct GeneratedToken(int Index, int Token, float? Logprob, TokenLogprob[]? TopLogprobs);

/// <summary>
/// The step-wise core of continuous batching: sequences are admitted and removed between steps, and
/// each <see cref="Step"/> is one forward pass in which every decoding sequence gets its next token
/// and prompts fill the rest of the step's token budget (long prompts in chunks). Each sequence
/// samples from its own generator, so its tokens do not depend on its neighbours.
/// <see cref="Generator"/> drives it from a request list; <see cref="GenerationEngine"/> from many threads.
/// Not thread-safe: one caller steps it.
/// </summary>
public sealed partial class ContinuousBatch(IForwardModel model, TextTokenizer? tokenizer, SchedulerOptions options)
{
    readonly List<Sequence> _active = [];
    readonly List<float[]> _slots = [];   // one (1, V) logits buffer per batch slot, kept across steps

    /// <summary>Sequences admitted and not yet finished or removed.</summary>
    public int Count => _active.Count;
    public bool IsFull => _active.Count >= options.MaxSequences;
    /// <summary>Total tokens the model has processed (prefill + decode).</summary>
    public long TokensProcessed { get; private set; }

    sealed partial class Sequence(int index, GenerationRequest request, KvCache cache, SequenceSteering? steering)
    {
        public int Index { get; } = index;
        public GenerationRequest Request { get; } = request;
        public KvCache Cache { get; } = cache;
        public SequenceSteering? Steering { get; } = steering;
        /// <summary>What the request's steering conditions decided (empty without conditions).</summary>
        public IReadOnlyList<ConditionOutcome> Conditions { get; init; } = [];
        public SplitMix64 Rng = new(request.Seed);
        public int Prefilled;
        public readonly List<int> Output = [];
        public readonly List<float> Logprobs = [];
        public readonly List<TokenLogprob[]> TopLogprobs = [];
        public readonly List<float>? PromptLogprobs = request.PromptLogprobs ? [] : null;
        public readonly List<TokenLogprob[]>? PromptTopLogprobs = request.PromptLogprobs && request.TopLogprobs > 0 ? [] : null;
        public HashSet<int>? History;
        public List<float>[]? Projections;
        public bool Decoding => Prefilled == Request.PromptTokens.Length;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming what is wrong with the request for this model.</summary>
    public void Validate(GenerationRequest r)
    {
        if (r.PromptTokens.Length == 0) throw new ArgumentException("the prompt is empty");
        foreach (int t in r.PromptTokens)
            if (t < 0 || t >= model.Config.VocabSize) throw new ArgumentException($"prompt token {t} is outside the vocabulary 0..{model.Config.VocabSize - 1}");
        r.Sampling.Validate();
        if (r.TopLogprobs is < 0 or > TokenLogprob.MaxTop) throw new ArgumentException($"top log-probs {r.TopLogprobs} must be in 0..{TokenLogprob.MaxTop}");
        if (r.Steering is { Count: > 0 } adds) new SequenceSteering(adds, r.PromptTokens.Length).Validate(model.Config);
        foreach (ProjectionMonitor m in r.Monitors ?? [])
        {
            if (m.Layer < 0 || m.Layer >= model.Config.NumLayers) throw new ArgumentException($"monitor '{m.Name}': layer {m.Layer} is out of range 0..{model.Config.NumLayers - 1}");
            if (m.Vector.Length != model.Config.HiddenSize) throw new ArgumentException($"monitor '{m.Name}': vector has {m.Vector.Length} elements, hidden size is {model.Config.HiddenSize}");
            if (!(System.Numerics.Tensors.TensorPrimitives.Norm(m.Vector) > 0)) throw new ArgumentException($"monitor '{m.Name}': vector is zero or not finite");
        }
    }

    /// <summary>
    /// Validates and admits a request under the caller's <paramref name="index"/>; it joins the next step.
    /// A request for no new tokens is finished at once: its result is returned and nothing is admitted.
    /// </summary>
    public GenerationResult? Admit(int index, GenerationRequest r)
    {
        try { Validate(r); }
        catch (ArgumentException e) { throw new ArgumentException($"request {index}: {e.Message}", e); }
        if (r.MaxNewTokens <= 0 && !r.PromptLogprobs)
            return new GenerationResult([], "length") { Index = index, PromptTokens = r.PromptTokens.Length, Text = "", Tag = r.Tag };
        var (terms, outcomes) = r.Steering is { Count: > 0 } adds ? ConditionalSteering.Resolve(model, r.PromptTokens, adds) : ([], []);
        var steering = terms.Count > 0 ? new SequenceSteering(terms, r.PromptTokens.Length) : null;
        var s = new Sequence(index, r, model.NewCache(r.PromptTokens.Length + Math.Max(0, r.MaxNewTokens)), steering) { Conditions = outcomes };
        if (r.Sampling.RepetitionPenalty != 1f) s.History = [.. r.PromptTokens];
        if (r.Monitors is { Count: > 0 } monitors) s.Projections = monitors.Select(_ => new List<float>()).ToArray();
        JoinPrefix(s, options.SharePrefixes);
        _active.Add(s);
        return null;
    }

    /// <summary>Drops the sequence admitted under <paramref name="index"/> (a cancelled request); its cache is freed.</summary>
    public bool Remove(int index) => _active.RemoveAll(s => s.Index == index) > 0;

    /// <summary>Drops every sequence (after a failed step, whose caches may be half written).</summary>
    public IReadOnlyList<int> Clear()
    {
        var indices = _active.Select(s => s.Index).ToList();
        _active.Clear();
        return indices;
    }

    /// <summary>One forward pass over the active sequences; returns the sequences it finished.</summary>
    public IReadOnlyList<GenerationResult> Step(Action<GeneratedToken>? onToken = null)
    {
        if (_active.Count == 0) return [];
        AdoptPrefixes();
        // Every decoding sequence gets its token; prompts fill the rest of the step's token budget.
        var batch = new List<(Sequence Seq, ForwardSequence Part, bool Samples)>();
        int budget = options.MaxTokensPerStep;
        foreach (Sequence s in _active.Where(s => s.Decoding))
        {
            batch.Add((s, new ForwardSequence(s.Cache, [s.Output[^1]], s.Steering), true));
            budget--;
        }
        foreach (Sequence s in _active.Where(s => !s.Decoding && s.PrefixDonor is null))
        {
            if (budget <= 0 && batch.Count > 0) break;
            int remaining = s.Request.PromptTokens.Length - s.Prefilled;
            int n = Math.Min(remaining, Math.Max(1, budget));
            batch.Add((s, new ForwardSequence(s.Cache, s.Request.PromptTokens[s.Prefilled..(s.Prefilled + n)], s.Steering, s.PromptLogprobs is not null), n == remaining));
            s.Prefilled += n;
            budget -= n;
        }

        var sink = batch.Any(b => b.Seq.Projections is not null) ? new MonitorSink(batch.Select(b => b.Seq).ToList(), model.Config.NumLayers + 1) : null;
        int V = model.Config.VocabSize;
        while (_slots.Count < batch.Count) _slots.Add(GC.AllocateUninitializedArray<float>(V));
        float[][] logits = _slots.GetRange(0, batch.Count).ToArray();
        for (int b = 0; b < batch.Count; b++)   // a scored prompt chunk gets every row's logits: (n, V)
            if (batch[b].Part.AllLogits) logits[b] = GC.AllocateUninitializedArray<float>(batch[b].Part.Tokens.Length * V);
        // The one branch point: a decoding row's next token is a draw the model may make where its
        // logits are (on the device); a row that also scores its prompt needs full logits and is
        // drawn here. Each sequence's generator gives one draw per token either way.
        var draws = new TokenDraw?[batch.Count];
        for (int b = 0; b < batch.Count; b++)
            if (batch[b].Samples && batch[b].Seq.Request.MaxNewTokens > 0)
            {
                GenerationRequest r = batch[b].Seq.Request;
                draws[b] = new TokenDraw(r.Sampling, batch[b].Seq.Rng.NextOpenUnit(), r.Logprobs || r.TopLogprobs > 0, r.TopLogprobs) { History = batch[b].Seq.History };
            }
        DrawnToken?[] drawn = model.ForwardSample(batch.Select(b => b.Part).ToList(), logits,
            batch.Select((b, i) => b.Part.AllLogits ? null : draws[i]).ToList(), sink);
        TokensProcessed += batch.Sum(b => b.Part.Tokens.Length);
        for (int b = 0; b < batch.Count; b++)
            if (batch[b].Part.AllLogits && draws[b] is { } d)
                drawn[b] = d.OnHost(logits[b].AsSpan((LogitBuffers.Rows(batch[b].Part) - 1) * V, V));
        var finished = new List<GenerationResult>();
        for (int b = 0; b < batch.Count; b++)
        {
            Sequence s = batch[b].Seq;
            int rows = LogitBuffers.Rows(batch[b].Part);
            if (batch[b].Part.AllLogits) ScorePrompt(s, logits[b], s.Prefilled - rows);
            if (!batch[b].Samples) continue;
            GenerationResult? done = s.Request.MaxNewTokens <= 0 ? Result(s, "length", null) : Accept(s, drawn[b]!.Value, onToken);
            if (done is null) continue;
            _active.Remove(s);
            finished.Add(done);
        }
        return finished;
    }

    /// <summary>Log-probs of the prompt tokens that follow a chunk's rows; the chunk starts at prompt position <paramref name="first"/>.</summary>
    void ScorePrompt(Sequence s, float[] logits, int first)
    {
        int V = model.Config.VocabSize, P = s.Request.PromptTokens.Length;
        for (int row = 0; first + row + 1 < P && row * V < logits.Length; row++)
        {
            ReadOnlySpan<float> l = logits.AsSpan(row * V, V);
            int next = s.Request.PromptTokens[first + row + 1];
            s.PromptLogprobs!.Add((float)Sampler.LogProb(l, next));
            s.PromptTopLogprobs?.Add(TokenLogprob.Top(l, s.Request.TopLogprobs));
        }
    }

    /// <summary>Appends a drawn token; returns the sequence's result if that finished it.</summary>
    GenerationResult? Accept(Sequence s, DrawnToken drawn, Action<GeneratedToken>? onToken)
    {
        GenerationRequest r = s.Request;
        (int token, float? logprob, TokenLogprob[]? top) = drawn;
        if (logprob is float lp) s.Logprobs.Add(lp);
        if (top is not null) s.TopLogprobs.Add(top);
        s.Output.Add(token);
        s.History?.Add(token);
        onToken?.Invoke(new GeneratedToken(s.Index, token, logprob, top));

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
        return finish is null ? null : Result(s, finish, text);
    }

    GenerationResult Result(Sequence s, string finish, string? text)
    {
        GenerationRequest r = s.Request;
        return new GenerationResult(s.Output.ToArray(), finish)
        {
            Index = s.Index,
            PromptTokens = r.PromptTokens.Length,
            TokenLogprobs = r.Logprobs || r.TopLogprobs > 0 ? s.Logprobs.ToArray() : null,
            TopLogprobs = r.TopLogprobs > 0 ? s.TopLogprobs.ToArray() : null,
            PromptLogprobs = s.PromptLogprobs?.ToArray(),
            PromptTopLogprobs = s.PromptTopLogprobs?.ToArray(),
            Projections = s.Projections?.Select(p => p.Take(s.Output.Count).ToArray()).ToArray(),
            Conditions = s.Conditions.Count > 0 ? s.Conditions : null,
            Text = text ?? tokenizer?.Decode(s.Output.ToArray(), skipSpecialTokens: true),
            Tag = r.Tag,
        };
    }

    /// <summary>Computes monitored projections from the residual stream as the forward pass goes by.</summary>
    /// <summary>
    /// The monitors' projections h·v/|v| of each monitored sequence's rows from its last prompt
    /// position on. On a device backend the dot products are taken on the device (each distinct
    /// vector once per entry) and only (rows, vectors) come back.
    /// </summary>
    sealed class MonitorSink(List<Sequence> segments, int entries) : Capture.IReducedStateSink
    {
        public void Record(int entry, ReadOnlySpan<float> states, Capture.BatchLayout layout)
        {
            int hidden = states.Length / layout.Rows;
            foreach ((Sequence s, int r, int m, float[] v) in Monitored(entry, layout))
                s.Projections![m].Add(System.Numerics.Tensors.TensorPrimitives.Dot(states.Slice(r * hidden, hidden), v) / System.Numerics.Tensors.TensorPrimitives.Norm(v));
        }

        /// <summary>Every (sequence, row, monitor, vector) whose projection this entry gives.</summary>
        IEnumerable<(Sequence S, int Row, int Monitor, float[] Vector)> Monitored(int entry, Capture.BatchLayout layout)
        {
            for (int r = 0; r < layout.Rows; r++)
            {
                Sequence s = segments[layout.SequenceOfRow[r]];
                if (s.Projections is null || layout.PositionOfRow[r] < s.Request.PromptTokens.Length - 1) continue;
                var monitors = s.Request.Monitors!;
                for (int m = 0; m < monitors.Count; m++)
                    if (monitors[m].Layer + 1 == entry) yield return (s, r, m, monitors[m].Vector);
            }
        }

        Dictionary<float[], int>[]? _directionIndex; // per entry: vector → its index among the entry's directions

        public Capture.StateReductions Reductions(Capture.BatchLayout layout)
        {
            _directionIndex = Enumerable.Range(0, entries).Select(_ => new Dictionary<float[], int>(ReferenceEqualityComparer.Instance)).ToArray();
            foreach (Sequence s in segments)
                foreach (ProjectionMonitor m in s.Request.Monitors ?? [])
                    _directionIndex[m.Layer + 1].TryAdd(m.Vector, _directionIndex[m.Layer + 1].Count);
            return new Capture.StateReductions(layout, _directionIndex.Select(d => d.OrderBy(kv => kv.Value).Select(kv => kv.Key).ToArray()).ToArray(), []);
        }

        public void RecordReduced(int entry, Capture.ReducedStates reduced, Capture.StateReductions plan)
        {
            Dictionary<float[], int> index = _directionIndex![entry];
            foreach ((Sequence s, int r, int m, float[] v) in Monitored(entry, plan.Layout))
                s.Projections![m].Add(reduced.Projections[r * index.Count + index[v]] / System.Numerics.Tensors.TensorPrimitives.Norm(v));
        }
    }
}
