using SteerEngine.Generation;
using SteerEngine.Judging.Providers;
using SteerEngine.Judging.Rubrics;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tokenization;

namespace SteerEngine.Experiments.Persona;

/// <summary>One chat to answer: its turns so far, and the steering of this row (null: unsteered).</summary>
public sealed record ChatToAnswer(IReadOnlyList<ChatTurn> Turns, SteeringAdd? Steering = null);

/// <summary>
/// Answers chats with the engine (every chat one row of a single batch, each with its own steering; the seed of a
/// row depends only on its index and the seed) or with an API model through a judge provider (unsteered, a few
/// calls in flight).
/// </summary>
public static class ChatAnswerer
{
    public static IReadOnlyList<string> Engine(LanguageModel lm, IReadOnlyList<ChatToAnswer> chats, int maxNewTokens, float temperature, ulong seed)
    {
        var requests = chats.Select((c, i) =>
        {
            string prompt = lm.Template.Render(c.Turns.Select(t => new ChatMessage(t.Role, t.Content)).ToList(), true,
                new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
            return new GenerationRequest(lm.Tokenizer.Encode(prompt, addBos: false), maxNewTokens, new SamplingOptions(temperature),
                c.Steering is null ? [] : [c.Steering], SplitMix64.Hash(seed ^ SplitMix64.Hash((ulong)i)), lm.Tokenizer.EosTokenIds);
        }).ToList();
        var generator = new Generator(lm.Transformer, lm.Tokenizer, new SchedulerOptions(MaxSequences: Math.Clamp(requests.Count, 1, 256), MaxTokensPerStep: 4096));
        return generator.Generate(requests).Select(r => r.Text ?? "").ToList();
    }

    public static IReadOnlyList<string> Api(IJudgeProvider provider, IReadOnlyList<ChatToAnswer> chats, int maxNewTokens, int inFlight = 8)
    {
        if (chats.Any(c => c.Steering is not null)) throw new ArgumentException($"{provider.Name}:{provider.Model} is an API model: it cannot be steered");
        var answers = new string[chats.Count];
        using var gate = new SemaphoreSlim(inFlight);
        Task.WaitAll(chats.Select(async (c, i) =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                answers[i] = (await provider.CompleteAsync(new JudgeRequest(c.Turns, maxNewTokens), CancellationToken.None).ConfigureAwait(false)).Text;
            }
            finally
            {
                gate.Release();
            }
        }).ToArray());
        return answers;
    }
}
