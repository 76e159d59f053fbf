using SteerEngine.Runtime;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Tokenization;

namespace SteerEngine.Model;

/// <summary>
/// A model directory loaded for use: the transformer, its tokenizer and its chat template. This is
/// what research scripts open first: <c>using var lm = LanguageModel.Load("/models/Llama-3.1-8B-Instruct");</c>
/// </summary>
public sealed class LanguageModel : IDisposable
{
    /// <summary>Fixed so that prompts (and so results) do not change with the day a job runs.</summary>
    public const string DefaultDateString = "26 Jul 2024";

    LanguageModel(string directory, IForwardModel model, TextTokenizer tokenizer, ChatTemplate template)
    {
        Directory = directory;
        Model = model;
        Tokenizer = tokenizer;
        Template = template;
    }

    public string Directory { get; }
    /// <summary>The forward pass, on whichever backend loaded it.</summary>
    public IForwardModel Model { get; }

    /// <summary>The CPU transformer (its weights, say); only on the cpu backend.</summary>
    public Transformer Transformer => Model as Transformer
        ?? throw new InvalidOperationException("this model runs on a CUDA backend; its CPU Transformer is not loaded");
    public TextTokenizer Tokenizer { get; }
    public ChatTemplate Template { get; }
    public ModelConfig Config => Model.Config;

    /// <param name="kernels">Auto (default) runs the fast packed-bf16 kernels, native when available; Exact the f32 reference path.</param>
    /// <param name="backend">cpu (default), cuda, or cuda-emu (the CUDA backend on the CPU emulator)</param>
    /// <param name="tensorParallel">devices for the cuda backends</param>
    public static LanguageModel Load(string directory, Action<string>? warn = null, CpuKernelChoice kernels = CpuKernelChoice.Auto,
        string backend = "cpu", int tensorParallel = 1)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: model directory not found");
        TextTokenizer tokenizer = TextTokenizer.Load(directory);
        IForwardModel model = Backends.Create(backend, directory, tensorParallel, kernels);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new ModelFormatException($"{Path.Combine(directory, "tokenizer.json")}: tokenizer has {tokenizer.VocabSize} tokens but config.json vocab_size is {model.Config.VocabSize}");
        }
        string family = model.Config.Arch == ModelArch.Qwen3 ? "qwen3" : "llama3";
        return new LanguageModel(directory, model, tokenizer, ChatTemplate.ForModel(tokenizer, family, warn));
    }

    /// <summary>The chat-formatted prompt for one user turn, ending with the assistant header.</summary>
    public string FormatChat(string user, string? system = null, bool addGenerationPrompt = true)
    {
        var messages = new List<ChatMessage>();
        if (system is not null) messages.Add(new ChatMessage("system", system));
        messages.Add(new ChatMessage("user", user));
        return Template.Render(messages, addGenerationPrompt, new Dictionary<string, object?> { ["date_string"] = DefaultDateString });
    }

    /// <summary>Prompt token ids: through the chat template (which writes BOS itself), or raw text with BOS.</summary>
    public int[] EncodePrompt(string user, string? system = null, bool chat = true) =>
        chat ? Tokenizer.Encode(FormatChat(user, system), addBos: false) : Tokenizer.Encode(user, addBos: true);

    public void Dispose() => Model.Dispose();
}
