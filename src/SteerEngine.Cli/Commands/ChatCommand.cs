using System.CommandLine;
using Spectre.Console;
using SteerEngine.Cli.Chat;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer chat</c>: a multi-turn conversation with a (steered) model in the terminal, answers
/// streamed as they come; slash commands change the steering, compare multipliers side by side,
/// monitor a direction and save the conversation (<see cref="ChatTerminal.Help"/>).
/// </summary>
public static class ChatCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model directory (Hugging Face layout)", Required = true };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact (the f32 reference path)", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu (the CUDA backend on the CPU emulator)", DefaultValueFactory = _ => "cpu" };
        var steering = new SteeringOptions();
        steering.Vector.Description = "steering vector: a file (.pt, .safetensors, .gguf, .npy), an SAE feature (sae.safetensors#W_dec[ROW][*SCALE]) or, on the demo model, a trait name (mood)";
        steering.Layer.Description = "decoder block (0-based) to steer and monitor (default: the middle one)";
        var system = new Option<string?>("--system") { Description = "system prompt" };
        var maxNew = new Option<int>("--max-new-tokens") { DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0.7f };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 0.95f };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0UL };
        var command = new Command("chat", "talk to a (steered) model in the terminal; /help inside lists the commands")
        {
            model, kernels, backend, system, maxNew, temperature, topP, seed,
        };
        steering.AddTo(command);
        command.SetAction(p => CliErrors.Run(() =>
        {
            var sampling = new SamplingOptions(p.GetValue(temperature), p.GetValue(topP));
            sampling.Validate();
            if (p.GetValue(maxNew) < 1) throw new ArgumentException($"--max-new-tokens {p.GetValue(maxNew)} must be ≥ 1");
            using LanguageModel lm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"), CpuKernels.Parse(p.GetValue(kernels)!), p.GetValue(backend)!);
            var settings = new ChatSettings(p.GetValue(maxNew), sampling, p.GetValue(seed), steering.Shape(p, lm.Config));
            var session = new ChatSession(lm, settings) { System = p.GetValue(system), Multiplier = p.GetValue(steering.Multiplier) };
            if (p.GetValue(steering.Layer) is int layer) session.Layer = layer;
            if (p.GetValue(steering.Vector) is string vector)
            {
                session.Vector = ChatVector.Resolve(vector, lm);
                session.Vector.ForBlock(session.Layer);
            }
            var terminal = new ChatTerminal(session, AnsiConsole.Console, Console.In);
            // Ctrl-C stops the answer being generated; at the prompt it only reminds how to leave.
            ConsoleCancelEventHandler onCtrlC = (_, e) =>
            {
                e.Cancel = true;
                if (!terminal.Interrupt()) Console.Error.WriteLine(" (Ctrl-D or /quit leaves the chat)");
            };
            Console.CancelKeyPress += onCtrlC;
            try
            {
                return terminal.Run();
            }
            finally
            {
                Console.CancelKeyPress -= onCtrlC;
            }
        }));
        return command;
    }
}
