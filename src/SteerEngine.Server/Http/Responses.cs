using System.Text.Json.Serialization;

namespace SteerEngine.Server.Http;

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens);

public sealed record TopLogprobEntry(string Token, float Logprob, int[] Bytes);
public sealed record TokenLogprobEntry(string Token, float Logprob, int[] Bytes, IReadOnlyList<TopLogprobEntry> TopLogprobs);
public sealed record ChatLogprobs(IReadOnlyList<TokenLogprobEntry> Content);

public sealed record AssistantMessage(string Role, string Content);
public sealed record ChatChoice(int Index, AssistantMessage Message, ChatLogprobs? Logprobs, string FinishReason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] float[]? Projections = null);
public sealed record ChatCompletion(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage);

public sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);
public sealed record ChatChunkChoice(int Index, ChatDelta Delta, ChatLogprobs? Logprobs, string? FinishReason,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] float[]? Projections = null);
public sealed record ChatCompletionChunk(string Id, string Object, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage);

/// <summary>Text completion log-probs in the legacy layout: parallel lists per token (null for the first prompt token).</summary>
public sealed record TextLogprobs(IReadOnlyList<string> Tokens, IReadOnlyList<float?> TokenLogprobs, IReadOnlyList<Dictionary<string, float>?> TopLogprobs, IReadOnlyList<int> TextOffset);
public sealed record TextChoice(string Text, int Index, TextLogprobs? Logprobs, string? FinishReason);
public sealed record TextCompletion(string Id, string Object, long Created, string Model, IReadOnlyList<TextChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage);

public sealed record ModelCard(string Id, string Object, long Created, string OwnedBy);
public sealed record ListOf<T>(string Object, IReadOnlyList<T> Data);
