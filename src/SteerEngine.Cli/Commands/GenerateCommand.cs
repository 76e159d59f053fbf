using System.CommandLine;
using SteerEngine.Generation;
using SteerEngine.Model;

namespace SteerEngine.Cli.Commands;

/// <summary><c>steer generate</c>: generate from one prompt, optionally steered.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model directory (Hugging Face layout)", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "the user message (or raw text with --raw)", Required = true };
        var system = new Option<string?>("--system") { Description = "system prompt" };
        var raw = new Option<bool>("--raw") { Description = "feed the prompt as plain text, without the chat template" };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 64 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "0 = off", DefaultValueFactory = _ => 0 };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var samples = new Option<int>("--samples") { Description = "independent samples of the same prompt", DefaultValueFactory = _ => 1 };
        var steering = new SteeringOptions();

        var command = new Command("generate", "generate text, optionally with a steering vector")
            { model, prompt, system, raw, maxNew, temperature, topP, topK, seed, samples };
        steering.AddTo(command);
        command.SetAction(p => CliErrors.Run(() =>
        {
            if (p.GetValue(maxNew) < 0) throw new ArgumentException("--max-new-tokens must be ≥ 0");
            if (p.GetValue(samples) < 1) throw new ArgumentException("--samples must be ≥ 1");
            using LanguageModel lm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"));
            int[] promptIds = lm.EncodePrompt(p.GetValue(prompt)!, p.GetValue(system), chat: !p.GetValue(raw));
            var adds = steering.Resolve(p, lm.Config);
            var sampling = new SamplingOptions(p.GetValue(temperature), p.GetValue(topP), p.GetValue(topK));
            var requests = Enumerable.Range(0, p.GetValue(samples)).Select(i => new GenerationRequest(
                promptIds, p.GetValue(maxNew), sampling, adds,
                SplitMix64.Hash(p.GetValue(seed) ^ SplitMix64.Hash((ulong)i)), lm.Tokenizer.EosTokenIds)).ToList();

            bool stream = requests.Count == 1;
            var results = new Generator(lm.Transformer).Generate(requests,
                stream ? (_, token) => Console.Write(lm.Tokenizer.DecodeToken(token)) : null);
            if (stream) Console.WriteLine();
            else
                for (int i = 0; i < results.Count; i++)
                    Console.WriteLine($"[{i}] {lm.Tokenizer.Decode(results[i].Tokens, skipSpecialTokens: true)}");
            return 0;
        }));
        return command;
    }
}
