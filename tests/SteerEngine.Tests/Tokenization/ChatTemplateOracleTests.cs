using System.Text.Json;
using NUnit.Framework;
using SteerEngine.Tokenization;

namespace SteerEngine.Tests.Tokenization;

/// <summary>
/// The built-in Llama 3.1 and Qwen3 templates rendered by our interpreter and by @huggingface/jinja
/// (tests/oracle/node/render_template.mjs) must give the same prompt, character for character.
/// </summary>
[TestFixture]
public class ChatTemplateOracleTests
{
    const string Llama = "llama3";
    const string Qwen = "qwen3";

    public sealed record Case(string Name, string Family, object[] Messages, bool AddGenerationPrompt, Dictionary<string, object?> Extra)
    {
        public override string ToString() => Name;
    }

    internal static Dictionary<string, object?> Turn(string role, string content) => new() { ["role"] = role, ["content"] = content };

    static readonly Dictionary<string, object?> WeatherTool = new()
    {
        ["type"] = "function",
        ["function"] = new Dictionary<string, object?>
        {
            ["name"] = "get_weather",
            ["description"] = "Current weather in a city, in °C",
            ["parameters"] = new Dictionary<string, object?>
            {
                ["type"] = "object",
                ["properties"] = new Dictionary<string, object?> { ["city"] = new Dictionary<string, object?> { ["type"] = "string" } },
                ["required"] = new[] { "city" },
            },
        },
    };

    internal static Dictionary<string, object?> ToolCall(string name, Dictionary<string, object?> arguments) => new()
    {
        ["role"] = "assistant",
        ["content"] = "",
        ["tool_calls"] = new[] { new Dictionary<string, object?> { ["type"] = "function", ["function"] = new Dictionary<string, object?> { ["name"] = name, ["arguments"] = arguments } } },
    };

    static readonly object[] SystemAndUser = [Turn("system", "You are a pirate.  "), Turn("user", "  Hello there!\n")];
    static readonly object[] MultiTurn =
    [
        Turn("system", "Answer briefly."), Turn("user", "What is 2+2?"), Turn("assistant", "4"),
        Turn("user", "And 3+3?"), Turn("assistant", "6"), Turn("user", "Thanks — ünïcödé 😀"),
    ];
    static readonly object[] QwenThinking =
    [
        Turn("user", "Is 7 prime?"), Turn("assistant", "<think>\nCheck divisors 2..2.\n</think>\n\nYes."),
        Turn("user", "Is 9 prime?"), Turn("assistant", "<think>\n9 = 3*3\n</think>\n\nNo, 9 = 3 × 3."),
    ];
    static readonly object[] ToolConversation =
    [
        Turn("user", "Weather in Paris?"),
        ToolCall("get_weather", new() { ["city"] = "Paris" }),
        Turn("tool", "{\"temp\": 21}"),
    ];

    static IEnumerable<Case> Cases()
    {
        yield return new("llama system+user, generation prompt", Llama, SystemAndUser, true, []);
        yield return new("llama no system", Llama, [Turn("user", "Hi")], true, []);
        yield return new("llama multi-turn, no generation prompt", Llama, MultiTurn, false, []);
        yield return new("llama multi-turn, generation prompt", Llama, MultiTurn, true, []);
        yield return new("llama date_string given", Llama, SystemAndUser, true, new() { ["date_string"] = "09 Mar 2025" });
        yield return new("llama tools in first user message", Llama, [Turn("user", "Weather in Paris?")], true, new() { ["tools"] = new[] { WeatherTool } });
        yield return new("llama tools in system message", Llama, SystemAndUser, true, new() { ["tools"] = new[] { WeatherTool }, ["tools_in_user_message"] = false });
        yield return new("llama tool call and result", Llama, ToolConversation, true, new() { ["tools"] = new[] { WeatherTool }, ["tools_in_user_message"] = false });
        yield return new("qwen system+user, generation prompt", Qwen, SystemAndUser, true, []);
        yield return new("qwen no system, thinking off", Qwen, [Turn("user", "Hi")], true, new() { ["enable_thinking"] = false });
        yield return new("qwen thinking on", Qwen, [Turn("user", "Hi")], true, new() { ["enable_thinking"] = true });
        yield return new("qwen multi-turn, no generation prompt", Qwen, MultiTurn, false, []);
        yield return new("qwen reasoning in history", Qwen, QwenThinking, false, []);
        yield return new("qwen tools, call and result", Qwen, ToolConversation, true, new() { ["tools"] = new[] { WeatherTool } });
    }

    [OneTimeSetUp]
    public void RequireJinjaOracle() => NodeOracle.RequirePackages("@huggingface/jinja");

    [TestCaseSource(nameof(Cases))]
    public void Builtin_template_renders_like_huggingface_jinja(Case c)
    {
        ChatTemplate template = ChatTemplate.BuiltIn(c.Family);
        var context = new Dictionary<string, object?>
        {
            ["messages"] = c.Messages,
            ["add_generation_prompt"] = c.AddGenerationPrompt,
        };
        if (template.BosToken is not null) context["bos_token"] = template.BosToken;
        if (template.EosToken is not null) context["eos_token"] = template.EosToken;
        foreach ((string key, object? value) in c.Extra)
            context[key] = value;

        string templatePath = Path.Combine(Path.GetTempPath(), $"steer-template-{Guid.NewGuid():N}.jinja");
        File.WriteAllText(templatePath, template.Source);
        try
        {
            string expected = NodeOracle.Run("render_template.mjs", [templatePath], JsonSerializer.Serialize(context));
            // Role/content messages go in as ChatMessage; messages with tool calls only fit through extra.
            bool plain = c.Messages.All(m => m is Dictionary<string, object?> d && d.Count == 2);
            var messages = plain
                ? c.Messages.Cast<Dictionary<string, object?>>().Select(d => new ChatMessage((string)d["role"]!, (string)d["content"]!)).ToList()
                : [];
            var extra = new Dictionary<string, object?>(c.Extra);
            if (!plain)
                extra["messages"] = c.Messages;

            Assert.That(template.Render(messages, c.AddGenerationPrompt, extra), Is.EqualTo(expected));
        }
        finally
        {
            File.Delete(templatePath);
        }
    }
}
