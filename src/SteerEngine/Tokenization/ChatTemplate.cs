using System.Reflection;
using SteerEngine.Tokenization.Jinja;

namespace SteerEngine.Tokenization;

/// <summary>One turn of a conversation, as Hugging Face chat templates receive it.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A model's chat template (Jinja, from tokenizer_config.json or built in), parsed once and
/// rendered into the prompt text the model was trained on.
/// </summary>
public sealed class ChatTemplate
{
    sealed record Family(string Resource, string? BosToken, string EosToken);

    // The Llama 3.1 Instruct and Qwen3 templates, verbatim, shipped in models/templates/.
    static readonly Dictionary<string, Family> Families = new(StringComparer.OrdinalIgnoreCase)
    {
        ["llama3"] = new("SteerEngine.Templates.llama3_1_instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
        ["qwen3"] = new("SteerEngine.Templates.qwen3.jinja", null, "<|im_end|>"),
    };

    readonly JinjaTemplate _template;
    readonly TimeProvider _clock;

    public string Source { get; }
    /// <summary>Passed to the template as bos_token; when null the variable is left undefined, as transformers does.</summary>
    public string? BosToken { get; }
    public string? EosToken { get; }

    /// <exception cref="ChatTemplateException">The source is not valid Jinja or uses something this interpreter lacks.</exception>
    public ChatTemplate(string source) : this(source, null, null) { }

    /// <param name="clock">What strftime_now() reads; the system clock when null.</param>
    public ChatTemplate(string source, string? bosToken, string? eosToken, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _template = new JinjaTemplate(source);
        _clock = clock ?? TimeProvider.System;
        Source = source;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>
    /// The prompt for <paramref name="messages"/>. The template sees <c>messages</c> (dicts with
    /// role and content), <c>add_generation_prompt</c>, <c>bos_token</c>, <c>eos_token</c>, and every
    /// entry of <paramref name="extra"/> (e.g. date_string, tools, enable_thinking), which wins over
    /// the others; its values may be strings, numbers, bools, dictionaries, sequences or JSON.
    /// </summary>
    /// <exception cref="ChatTemplateException">The template failed or called raise_exception.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var variables = new Dictionary<string, object?>
        {
            ["messages"] = messages,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        if (BosToken is not null)
            variables["bos_token"] = BosToken;
        if (EosToken is not null)
            variables["eos_token"] = EosToken;
        if (extra is not null)
            foreach ((string name, object? value) in extra)
                variables[name] = value;
        return _template.Render(variables, _clock);
    }

    /// <summary>The shipped template of a model family: "llama3" (Llama 3.1 Instruct) or "qwen3".</summary>
    public static ChatTemplate BuiltIn(string family, TimeProvider? clock = null)
    {
        Family f = Lookup(family);
        return new ChatTemplate(ReadResource(f.Resource), f.BosToken, f.EosToken, clock);
    }

    /// <summary>
    /// The tokenizer's own chat_template when it has one that parses; otherwise the built-in
    /// template of <paramref name="family"/>, after telling <paramref name="warn"/> why.
    /// </summary>
    public static ChatTemplate ForModel(TextTokenizer tokenizer, string family, Action<string>? warn, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (tokenizer.ChatTemplate is null)
        {
            warn?.Invoke($"the tokenizer has no chat_template; using the built-in {family} template");
        }
        else
        {
            try
            {
                return new ChatTemplate(tokenizer.ChatTemplate, tokenizer.BosToken, tokenizer.EosToken, clock);
            }
            catch (ChatTemplateException e)
            {
                warn?.Invoke($"the tokenizer's chat_template cannot be used ({e.Message}); using the built-in {family} template");
            }
        }
        Family f = Lookup(family);
        return new ChatTemplate(ReadResource(f.Resource), tokenizer.BosToken ?? f.BosToken, tokenizer.EosToken ?? f.EosToken, clock);
    }

    static Family Lookup(string family) =>
        Families.TryGetValue(family, out Family? f) ? f
            : throw new ArgumentException($"unknown chat template family '{family}'; built-in ones are {string.Join(", ", Families.Keys)}", nameof(family));

    static string ReadResource(string name)
    {
        using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"the built-in chat template {name} is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
