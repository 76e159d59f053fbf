using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tokenization;

namespace SteerEngine.Cli.Chat;

/// <summary>How every answer of a chat is sampled, and the positions, operation and condition of its steering.</summary>
public sealed record ChatSettings(int MaxNewTokens, SamplingOptions Sampling, ulong Seed, SteeringTermShape Shape)
{
    public SteeringPositions Positions => Shape.Positions;
}

/// <summary>The steering an answer was made with (no vector: unsteered).</summary>
public sealed record ChatSteering(string? Vector, int Layer, float Multiplier, SteeringPositions Positions);

/// <summary>
/// One entry of the conversation. <see cref="Alternative"/> answers (from /compare) are kept for the
/// record but are not part of the history the model sees.
/// </summary>
public sealed record ChatTurn(string Role, string Content, ChatSteering? Steering = null, string? FinishReason = null, bool Alternative = false);

/// <summary>One generated answer: its text, why it ended ("stop", "length" or "cancelled") and, with a monitor, one projection per token.</summary>
public sealed record ChatReply(string Text, string FinishReason, ChatSteering Steering, float[]? Projections, int TurnsLeftOut);

/// <summary>Receives an answer's text as it grows: (answer index, generated-token index, new text).</summary>
public delegate void ChatTextSink(int answer, int token, string text);

/// <summary>
/// A conversation with a steered model: the history (rendered through the model's chat template),
/// the current steering (vector, block, multiplier) and an optional monitored direction. Answers
/// stream through a callback and stop when the cancellation token fires; /compare answers the last
/// user turn once per multiplier, all rows of one batch.
/// </summary>
public sealed class ChatSession(LanguageModel lm, ChatSettings settings)
{
    readonly List<ChatTurn> _turns = [];
    int _layer = (lm.Config.NumLayers - 1) / 2;

    public LanguageModel Model => lm;
    public ChatSettings Settings => settings;
    public IReadOnlyList<ChatTurn> Turns => _turns;
    public string? System { get; set; }
    public ChatVector? Vector { get; set; }
    public float Multiplier { get; set; } = 1f;
    /// <summary>The direction whose projection each generated token carries (at <see cref="Layer"/>).</summary>
    public ChatVector? Monitor { get; set; }

    /// <summary>The decoder block (0-based) that is steered and monitored.</summary>
    public int Layer
    {
        get => _layer;
        set => _layer = value >= 0 && value < lm.Config.NumLayers ? value
            : throw new ArgumentException($"layer {value} is out of range: the model has blocks 0..{lm.Config.NumLayers - 1}");
    }

    public ChatSteering CurrentSteering(float multiplier) => new(Vector?.Name, Layer, multiplier, settings.Positions);

    public void Reset() => _turns.Clear();

    /// <summary>Adds the user turn, answers it with the current steering and adds the answer (also a cancelled one, as far as it got).</summary>
    public ChatReply Answer(string user, ChatTextSink? onText = null, CancellationToken cancel = default)
    {
        if (string.IsNullOrWhiteSpace(user)) throw new ArgumentException("the message is empty");
        _turns.Add(new ChatTurn("user", user));
        ChatReply reply;
        try
        {
            reply = Generate([Multiplier], onText, cancel)[0];
        }
        catch (ArgumentException)
        {
            _turns.RemoveAt(_turns.Count - 1);   // a turn the model could not take (too long) does not stay in the history
            throw;
        }
        _turns.Add(new ChatTurn("assistant", reply.Text, reply.Steering, reply.FinishReason));
        return reply;
    }

    /// <summary>
    /// The last user turn answered at each multiplier, as one batch with one seed (the answer's own seed,
    /// so the column at the current multiplier repeats the answer when sampling is reproducible).
    /// The answers are recorded as alternatives; the history keeps its answer.
    /// </summary>
    public IReadOnlyList<ChatReply> Compare(IReadOnlyList<float> multipliers, ChatTextSink? onText = null, CancellationToken cancel = default)
    {
        int lastUser = CheckComparable(multipliers);
        var replies = Generate(multipliers, onText, cancel, upTo: lastUser + 1);
        _turns.AddRange(replies.Select(r => new ChatTurn("assistant", r.Text, r.Steering, r.FinishReason, Alternative: true)));
        return replies;
    }

    /// <summary>Throws unless /compare can run; returns the index of the turn it answers.</summary>
    public int CheckComparable(IReadOnlyList<float> multipliers)
    {
        if (Vector is null) throw new ArgumentException("/compare needs a steering vector: /vector NAME|FILE first");
        if (multipliers.Count == 0) throw new ArgumentException("/compare needs at least one multiplier");
        int lastUser = _turns.FindLastIndex(t => t.Role == "user");
        return lastUser >= 0 ? lastUser : throw new ArgumentException("nothing to compare yet: send a message first");
    }

    /// <summary>The chat-formatted prompt for the history up to <paramref name="upTo"/> turns, oldest exchanges left out until it fits.</summary>
    (int[] Tokens, int MaxNew, int LeftOut) Prompt(int upTo)
    {
        var history = _turns.Take(upTo).Where(t => !t.Alternative).Select(t => new ChatMessage(t.Role, t.Content)).ToList();
        int context = lm.Config.MaxPositionEmbeddings, leftOut = 0;
        while (true)
        {
            var messages = new List<ChatMessage>();
            if (System is not null) messages.Add(new ChatMessage("system", System));
            messages.AddRange(history.Skip(leftOut));
            string text = lm.Template.Render(messages, addGenerationPrompt: true,
                new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
            int[] tokens = lm.Tokenizer.Encode(text, addBos: false);
            // The answer may be cut short to keep the history, down to half the context (or MaxNewTokens if less).
            int room = context - tokens.Length;
            if (room >= Math.Min(settings.MaxNewTokens, context / 2)) return (tokens, Math.Min(settings.MaxNewTokens, room), leftOut);
            if (history.Count - leftOut > 1) { leftOut += 2; continue; }   // drop the oldest user turn and its answer
            if (room > 0) return (tokens, Math.Min(settings.MaxNewTokens, room), leftOut);
            throw new ArgumentException($"the message is too long: the prompt is {tokens.Length} tokens, the model's context is {context}");
        }
    }

    IReadOnlyList<ChatReply> Generate(IReadOnlyList<float> multipliers, ChatTextSink? onText, CancellationToken cancel, int? upTo = null)
    {
        int turns = upTo ?? _turns.Count;
        var (prompt, maxNew, leftOut) = Prompt(turns);
        int userTurns = _turns.Take(turns).Count(t => t.Role == "user");
        ulong seed = SplitMix64.Hash(settings.Seed ^ SplitMix64.Hash((ulong)userTurns));
        ProjectionMonitor? monitor = Monitor is null ? null : new ProjectionMonitor($"{Monitor.Name}@{Layer}", Layer, Monitor.ForBlock(Layer));
        var requests = multipliers.Select(m => new GenerationRequest(prompt, maxNew, settings.Sampling,
            Vector is null ? null : [settings.Shape.Term(Layer, Vector.ForBlock(Layer), m)], seed, lm.Tokenizer.EosTokenIds)
        {
            Monitors = monitor is null ? null : [monitor],
        }).ToList();

        var streams = multipliers.Select(_ => new TextStream(lm.Tokenizer)).ToArray();
        var generator = new Generator(lm.Model, lm.Tokenizer, new SchedulerOptions(MaxSequences: requests.Count, MaxTokensPerStep: Math.Max(512, prompt.Length * requests.Count)));
        var replies = new ChatReply?[requests.Count];
        try
        {
            foreach (GenerationResult r in generator.Stream(requests, (index, token) =>
            {
                cancel.ThrowIfCancellationRequested();
                string added = streams[index].Add(token);
                onText?.Invoke(index, streams[index].Count - 1, added);
            }))
                replies[r.Index] = new ChatReply(r.Text ?? "", r.FinishReason, CurrentSteering(multipliers[r.Index]), r.Projections?[0], leftOut);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // The generator stops where the token callback threw; what each answer had so far is kept.
        }
        return replies.Select((r, i) => r ?? new ChatReply(streams[i].Text, "cancelled", CurrentSteering(multipliers[i]), null, leftOut)).ToList();
    }

    /// <summary>
    /// An answer's text as its tokens arrive: the whole answer is decoded each time and what is new is
    /// returned, so a character split across tokens appears whole (held back while incomplete).
    /// </summary>
    sealed class TextStream(TextTokenizer tokenizer)
    {
        readonly List<int> _tokens = [];
        public string Text { get; private set; } = "";
        public int Count => _tokens.Count;

        public string Add(int token)
        {
            _tokens.Add(token);
            string text = tokenizer.Decode(_tokens.ToArray(), skipSpecialTokens: true);
            if (text.Length <= Text.Length || text.EndsWith('\uFFFD') || !text.StartsWith(Text, StringComparison.Ordinal)) return "";
            string added = text[Text.Length..];
            Text = text;
            return added;
        }
    }
}
