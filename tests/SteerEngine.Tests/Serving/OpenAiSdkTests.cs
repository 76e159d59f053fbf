#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
using System.ClientModel;
using OpenAI;
using OpenAI.Chat;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using ChatMessage = OpenAI.Chat.ChatMessage;

namespace SteerEngine.Tests.Serving;

/// <summary>The official OpenAI .NET SDK against the real server: what it sends is accepted, what it gets back parses and is right.</summary>
[TestFixture]
public class OpenAiSdkTests : DemoServerFixture
{
    ChatClient Client(string model = TestServer.Model) =>
        new(model, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(Server.BaseAddress, "v1") });

    /// <summary>What Generator gives alone for the same chat prompt, steering and sampling (seed derived as steer generate does).</summary>
    GenerationResult Direct(string user, int maxTokens, SamplingOptions sampling, ulong seed = 0, IReadOnlyList<SteeringAdd>? steering = null, int top = 0)
    {
        string text = Lm.Template.Render([new SteerEngine.Tokenization.ChatMessage("user", user)], true, new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
        var request = new GenerationRequest(Lm.Tokenizer.Encode(text, addBos: false), maxTokens, sampling, steering,
            SplitMix64.Hash(seed ^ SplitMix64.Hash(0UL)), Lm.Tokenizer.EosTokenIds) { TopLogprobs = top, Logprobs = top > 0 };
        return new Generator(Lm.Model, Lm.Tokenizer).Generate([request])[0];
    }

    [Test]
    public async Task Non_streaming_chat_equals_a_direct_generator_run_with_usage_and_top_20_logprobs()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0f, IncludeLogProbabilities = true, TopLogProbabilityCount = 20 };
        ChatCompletion completion = (await Client().CompleteChatAsync([ChatMessage.CreateUserMessage("the cat")], options)).Value;
        var direct = Direct("the cat", 8, new SamplingOptions(), top: 20);

        Assert.That(completion.Content[0].Text, Is.EqualTo(direct.Text));
        Assert.That(completion.FinishReason, Is.EqualTo(direct.FinishReason == "stop" ? ChatFinishReason.Stop : ChatFinishReason.Length));
        Assert.That(completion.Usage.OutputTokenCount, Is.EqualTo(direct.Tokens.Length));
        Assert.That(completion.Usage.InputTokenCount, Is.EqualTo(direct.PromptTokens));
        Assert.That(completion.ContentTokenLogProbabilities, Has.Count.EqualTo(direct.Tokens.Length));
        for (int i = 0; i < direct.Tokens.Length; i++)
        {
            var lp = completion.ContentTokenLogProbabilities[i];
            Assert.That(lp.Token, Is.EqualTo(Lm.Tokenizer.DecodeToken(direct.Tokens[i])));
            Assert.That(lp.LogProbability, Is.EqualTo(direct.TokenLogprobs![i]).Within(1e-6));
            Assert.That(lp.TopLogProbabilities, Has.Count.EqualTo(20));
            Assert.That(lp.TopLogProbabilities.Select(t => t.LogProbability), Is.EqualTo(direct.TopLogprobs![i].Select(t => t.Logprob)).Within(1e-6));
            Assert.That(lp.Utf8Bytes!.Value.ToArray(), Is.EqualTo(Lm.Tokenizer.TokenBytes(direct.Tokens[i]).ToArray()));
        }
    }

    [Test]
    public async Task Streaming_chat_sends_the_same_text_and_logprobs_in_pieces_with_usage_last()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0.9f, Seed = 7, IncludeLogProbabilities = true, TopLogProbabilityCount = 5 };
        ChatCompletion completion = (await Client().CompleteChatAsync([ChatMessage.CreateUserMessage("my dog")], options)).Value;
        string whole = completion.Content[0].Text;
        var logprobs = new List<ChatTokenLogProbabilityDetails>();
        var pieces = new List<string>();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (StreamingChatCompletionUpdate u in Client().CompleteChatStreamingAsync([ChatMessage.CreateUserMessage("my dog")], options))
        {
            pieces.AddRange(u.ContentUpdate.Select(p => p.Text));
            logprobs.AddRange(u.ContentTokenLogProbabilities);
            finish ??= u.FinishReason;
            usage ??= u.Usage;
        }
        Assert.That(string.Concat(pieces), Is.EqualTo(whole));
        Assert.That(whole, Is.EqualTo(Direct("my dog", 10, new SamplingOptions(0.9f), seed: 7).Text));
        Assert.That(pieces.Count(p => p.Length > 0), Is.GreaterThan(1));
        Assert.That(finish, Is.Not.Null);
        Assert.That(usage?.OutputTokenCount, Is.GreaterThan(0));
        Assert.That(logprobs.Select(l => (l.Token, l.LogProbability)), Is.EqualTo(completion.ContentTokenLogProbabilities.Select(l => (l.Token, l.LogProbability))));
        Assert.That(logprobs, Has.Count.EqualTo(usage!.OutputTokenCount));
        Assert.That(logprobs.All(l => l.TopLogProbabilities.Count == 5));
    }

    [Test]
    public async Task A_preset_model_alias_steers_requests_like_the_steering_field()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0f };
        string aliased = (await Client("demo-moody").CompleteChatAsync([ChatMessage.CreateUserMessage("the cat")], options)).Value.Content[0].Text;
        string plain = (await Client().CompleteChatAsync([ChatMessage.CreateUserMessage("the cat")], options)).Value.Content[0].Text;
        var steered = Direct("the cat", 8, new SamplingOptions(), steering: [new SteeringAdd(2, Server.Mood, 6f)]);
        Assert.That(aliased, Is.EqualTo(steered.Text));
        Assert.That(aliased, Is.Not.EqualTo(plain));
    }

    [Test]
    public void An_unknown_model_is_a_404_the_sdk_reports()
    {
        var e = Assert.ThrowsAsync<ClientResultException>(() => Client("nope").CompleteChatAsync([ChatMessage.CreateUserMessage("x")]));
        Assert.That(e!.Status, Is.EqualTo(404));
        Assert.That(e.Message, Does.Contain("'nope' does not exist"));
    }
}
