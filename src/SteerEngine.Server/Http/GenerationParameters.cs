using System.Text.Json;

namespace SteerEngine.Server.Http;

/// <summary>The sampling, length, log-prob, streaming and steering fields chat and text completions share.</summary>
public sealed record GenerationParameters(
    string Model,
    int? MaxTokens,
    float Temperature,
    float TopP,
    int TopK,
    float MinP,
    float RepetitionPenalty,
    int N,
    long? Seed,
    IReadOnlyList<string> Stop,
    bool Stream,
    bool IncludeUsage,
    bool Logprobs,
    int TopLogprobs,
    JsonElement? Steering)
{
    /// <summary>Reads the shared fields. <paramref name="chat"/> selects chat's log-prob fields (logprobs: bool + top_logprobs) over text completion's (logprobs: int).</summary>
    public static GenerationParameters Read(RequestFields f, bool chat, ServerLimits limits)
    {
        string model = f.RequiredString("model");
        long? maxTokens = f.Integer("max_tokens", 0, limits.MaxTokens);
        if (chat && f.Integer("max_completion_tokens", 0, limits.MaxTokens) is long mct) maxTokens = mct;
        float temperature = (float)(f.Number("temperature", 0, 2) ?? 1.0);
        float topP = (float)(f.Number("top_p", 1e-9, 1) ?? 1.0);
        int topK = (int)(f.Integer("top_k", -1, int.MaxValue) ?? 0);
        float minP = (float)(f.Number("min_p", 0, 0.999999) ?? 0.0);
        float repetition = (float)(f.Number("repetition_penalty", 1e-6, 100) ?? 1.0);
        int n = (int)(f.Integer("n", 1, limits.MaxChoices) ?? 1);
        long? seed = f.Integer("seed");
        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = false;
        if (f.Get("stream_options") is { } so)
        {
            if (!stream) throw ApiException.BadRequest("'stream_options' is only allowed with 'stream': true", "stream_options");
            var o = RequestFields.Of(so, "'stream_options'", "stream_options.");
            includeUsage = o.Bool("include_usage") ?? false;
            o.RejectUnread();
        }
        bool logprobs;
        int top;
        if (chat)
        {
            logprobs = f.Bool("logprobs") ?? false;
            top = (int)(f.Integer("top_logprobs", 0, Generation.TokenLogprob.MaxTop) ?? 0);
            if (top > 0 && !logprobs) throw ApiException.BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
        }
        else
        {
            long? lp = f.Integer("logprobs", 0, Generation.TokenLogprob.MaxTop);
            logprobs = lp is not null;
            top = (int)(lp ?? 0);
        }
        f.Neutral("frequency_penalty", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0);
        f.Neutral("presence_penalty", v => v.ValueKind == JsonValueKind.Number && v.GetDouble() == 0);
        f.Neutral("logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any());
        f.String("user");
        return new GenerationParameters(model, (int?)maxTokens, temperature, topP, topK < 0 ? 0 : topK, minP, repetition, n, seed,
            ReadStop(f), stream, includeUsage, logprobs, top, f.Get("steering"));
    }

    static IReadOnlyList<string> ReadStop(RequestFields f)
    {
        if (f.Get("stop") is not { } v) return [];
        var stops = v.ValueKind switch
        {
            JsonValueKind.String => [v.GetString()!],
            JsonValueKind.Array => v.EnumerateArray().Select(s => s.ValueKind == JsonValueKind.String ? s.GetString()! : throw f.Wrong("stop", s, "a string or a list of strings")).ToList(),
            _ => throw f.Wrong("stop", v, "a string or a list of strings"),
        };
        if (stops.Count > 4) throw ApiException.BadRequest($"'stop' has {stops.Count} sequences; at most 4", "stop");
        if (stops.Any(s => s.Length == 0)) throw ApiException.BadRequest("'stop' sequences must not be empty", "stop");
        return stops;
    }
}

/// <summary>Caps on what one request may ask for.</summary>
public sealed record ServerLimits(int MaxTokens = 4096, int MaxChoices = 16, int MaxPromptsPerRequest = 256);
