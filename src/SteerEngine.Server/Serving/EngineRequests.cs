using SteerEngine.Generation;
using SteerEngine.Server.Http;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>Turns a validated HTTP request's parameters into the engine's requests, one per choice.</summary>
public static class EngineRequests
{
    /// <summary>
    /// Choice <paramref name="choice"/>'s request. Its seed is derived from the request's seed exactly as
    /// <c>steer generate --seed S</c> derives sample i's, so the same prompt, steering and seed give the same tokens.
    /// </summary>
    public static GenerationRequest Build(ServedModel model, int[] prompt, GenerationParameters p, IReadOnlyList<SteeringAdd>? steering,
        int choice, ulong seed, ServerLimits limits, bool promptLogprobs = false)
    {
        int context = model.Lm.Config.MaxPositionEmbeddings;
        if (prompt.Length >= context)
            throw ApiException.BadRequest($"the prompt has {prompt.Length} tokens; the model's context is {context}", "messages", "context_length_exceeded");
        int maxTokens = p.MaxTokens ?? Math.Min(limits.MaxTokens, context - prompt.Length);
        if (prompt.Length + maxTokens > context)
            throw ApiException.BadRequest($"the prompt's {prompt.Length} tokens + max_tokens {maxTokens} exceed the model's context of {context}", "max_tokens", "context_length_exceeded");
        var request = new GenerationRequest(prompt, maxTokens, new SamplingOptions(p.Temperature, p.TopP, p.TopK, p.MinP, p.RepetitionPenalty),
            steering is { Count: > 0 } ? steering : null, SplitMix64.Hash(seed ^ SplitMix64.Hash((ulong)choice)), model.Lm.Tokenizer.EosTokenIds)
        {
            StopStrings = p.Stop.Count > 0 ? p.Stop : null,
            Logprobs = p.Logprobs,
            TopLogprobs = p.TopLogprobs,
            PromptLogprobs = promptLogprobs,
        };
        try { model.Engine.Validate(request); }
        catch (ArgumentException e) { throw ApiException.BadRequest(e.Message, e.Message.Contains("steering") ? "steering" : null); }
        return request;
    }

    /// <summary>The request's steering: its own field if present (false = none), else the model alias's preset.</summary>
    public static IReadOnlyList<SteeringAdd>? Steering(GenerationParameters p, ServedModel model, IReadOnlyList<SteeringAdd>? preset, VectorLibrary vectors) =>
        SteeringSpec.Parse(p.Steering, vectors, model.Lm.Config) ?? preset;

    /// <summary>The request's seed, or a fresh random one when it gives none (a batch line passes its own default).</summary>
    public static ulong Seed(GenerationParameters p, ulong? fallback = null) =>
        p.Seed is long s ? unchecked((ulong)s) : fallback ?? (ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.Next() << 63);
}
