using System.CommandLine;
using Spectre.Console;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Training;
using SteerEngine.Training.Cuda;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer train-bipo</c>: trains BiPO steering vectors (one per layer) on a preference set, writing
/// vec_ep{N}_layer{L}.pt / .safetensors and evaluation_metrics.jsonl per epoch; --resume continues.
/// </summary>
public static class TrainBipoCommand
{
    public static Command Create()
    {
        var defaults = new BipoOptions();
        var model = new Option<string>("--model") { Required = true, Description = "model directory (Hugging Face layout)" };
        var data = new Option<string>("--data") { Required = true, Description = "training pairs: .csv (question,matching,not_matching) or .jsonl (prompt/chosen/rejected or messages)" };
        var test = new Option<string?>("--test") { Description = "held-out pairs, same formats (default: none; test metrics are then those of --data)" };
        var layer = new Option<int?>("--layer") { Description = "decoder block whose output is steered (0-based)" };
        var layers = new Option<string?>("--layers") { Description = "several blocks, trained one after another: 10,12 or 10:20:2" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => defaults.Epochs };
        var output = new Option<string>("--out") { Required = true, Description = "output directory" };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => defaults.LearningRate };
        var beta = new Option<double>("--beta") { DefaultValueFactory = _ => defaults.Beta };
        var batchSize = new Option<int>("--batch-size") { DefaultValueFactory = _ => defaults.BatchSize };
        var gradAccum = new Option<int>("--grad-accum") { DefaultValueFactory = _ => defaults.GradientAccumulation };
        var warmup = new Option<int>("--warmup") { Description = "linear warm-up steps of the cosine schedule", DefaultValueFactory = _ => defaults.WarmupSteps };
        var weightDecay = new Option<double>("--weight-decay") { DefaultValueFactory = _ => defaults.WeightDecay };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "gradient-norm clip (0 = off)", DefaultValueFactory = _ => defaults.MaxGradNorm };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => defaults.Seed };
        var system = new Option<string?>("--system") { Description = "system prompt for every example" };
        var resume = new Option<bool>("--resume") { Description = "continue from the last completed epoch; complete layers are skipped" };
        var kernels = new Option<string>("--kernels") { Description = "the cpu backend's products: auto | native | managed (packed bf16 weight products) | exact (the f32 reference path)", DefaultValueFactory = _ => "auto" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu (the CUDA backend on the CPU emulator)", DefaultValueFactory = _ => "cpu" };
        var tp = new Option<int>("--tp") { Description = "tensor-parallel devices per replica (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };
        var keep = new Option<string>("--keep-mib")
        {
            Description = "memory a step may spend keeping the lowest steered blocks' activations instead of recomputing them in the backward, " +
                          "in MiB: host memory on the cpu backend, each device's own on cuda and cuda-emu (0: recompute every block); " +
                          "auto: on cuda and cuda-emu, at each batch, each device's free memory less 10 % of the device (at least 1 GiB) " +
                          "and the step's other buffers, the same blocks on every device of a --tp group; on cpu the default",
            DefaultValueFactory = _ => (defaults.KeepBytes >> 20).ToString(),
        };
        var dp = new Option<int>("--dp") { Description = "data-parallel replicas, each a share of every batch (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };

        var command = new Command("train-bipo", "train BiPO steering vectors (bi-directional preference optimization)")
        {
            model, data, test, layer, layers, epochs, output, lr, beta, batchSize, gradAccum, warmup, weightDecay, maxGradNorm, seed, system, resume, kernels,
            backend, tp, dp, keep,
        };
        command.SetAction(p => CliErrors.Run(() =>
        {
            if (p.GetValue(layer) is null == p.GetValue(layers) is null)
                throw new ArgumentException("give exactly one of --layer L or --layers LIST");
            long keepBytes = KeepBytes(p.GetValue(keep)!);
            IReadOnlyList<int> blocks = p.GetValue(layers) is string list ? SweepValues.Layers(list) : [p.GetValue(layer)!.Value];
            var options = new BipoOptions
            {
                Epochs = p.GetValue(epochs), LearningRate = p.GetValue(lr), Beta = p.GetValue(beta), BatchSize = p.GetValue(batchSize),
                GradientAccumulation = p.GetValue(gradAccum), WarmupSteps = p.GetValue(warmup), WeightDecay = p.GetValue(weightDecay),
                MaxGradNorm = p.GetValue(maxGradNorm), Seed = p.GetValue(seed), Kernels = CpuKernels.Parse(p.GetValue(kernels)!),
                KeepBytes = keepBytes,
            };
            options.Validate();
            // The trainer packs what its products need itself; the model's own forward is not used, so it packs nothing.
            using LanguageModel lm = LanguageModel.Load(p.GetValue(model)!, w => Console.Error.WriteLine($"warning: {w}"), CpuKernelChoice.Exact);
            var trainPairs = PreferenceData.Load(p.GetValue(data)!, lm, p.GetValue(system));
            var testPairs = p.GetValue(test) is string testPath ? PreferenceData.Load(testPath, lm, p.GetValue(system)) : trainPairs;
            IBipoBackend runsOn = BipoBackends.Create(p.GetValue(backend)!, lm.Transformer, p.GetValue(model)!, options.Kernels, p.GetValue(tp), p.GetValue(dp));
            using var trainer = new BipoTrainer(runsOn, options);
            string outDir = p.GetValue(output)!;
            int totalSteps = trainer.StepsPerEpoch(trainPairs.Count) * options.Epochs;
            var messages = new List<string>();

            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var tasks = blocks.ToDictionary(l => l, l => ctx.AddTask($"layer {l}", autoStart: false, maxValue: totalSteps));
                    trainer.Run(blocks, trainPairs, testPairs, outDir, p.GetValue(resume),
                        onStep: s =>
                        {
                            var task = tasks[s.Layer];
                            task.StartTask();
                            task.Value = s.Step;
                            task.Description = $"layer {s.Layer} · epoch {s.Epoch}/{options.Epochs} · loss {s.Loss:0.0000} · {s.StepTime.TotalSeconds:0.00} s/step";
                        },
                        onEpoch: m => AnsiConsole.MarkupLine(Markup.Escape(
                            $"layer {m.Layer} epoch {m.Epoch}: train loss {m.TrainLoss:0.0000}; test +v loss {m.TestPlus.Loss:0.0000} acc {m.TestPlus.RewardAccuracy:0.00} " +
                            $"margin {m.TestPlus.Margin:0.000}; −v loss {m.TestMinus.Loss:0.0000} acc {m.TestMinus.RewardAccuracy:0.00} margin {m.TestMinus.Margin:0.000}")),
                        log: messages.Add);
                    foreach (var task in tasks.Values) task.Value = task.MaxValue;
                });
            foreach (string message in messages) Console.WriteLine(message);
            Console.WriteLine(KeepLine(runsOn, options.KeepBytes));
            Console.WriteLine($"wrote vectors and {BipoTrainer.MetricsFileName} to {outDir}");
            return 0;
        }));
        return command;
    }

    /// <summary>--keep-mib: a whole number of MiB, 0 or more, or auto (<see cref="BipoOptions.AutoKeep"/>).</summary>
    static long KeepBytes(string value)
    {
        if (value == "auto") return BipoOptions.AutoKeep;
        if (!long.TryParse(value, out long mib) || mib is < 0 or > long.MaxValue >> 20)
            throw new ArgumentException($"--keep-mib {value}: must be auto or a whole number of MiB between 0 and {long.MaxValue >> 20}");
        return mib << 20;
    }

    /// <summary>The keep budget the run had and, on CUDA, the blocks its last training batch kept.</summary>
    static string KeepLine(IBipoBackend backend, long keepBytes)
    {
        string how = keepBytes == BipoOptions.AutoKeep ? "auto" : "--keep-mib";
        if (keepBytes == 0) return $"keep budget ({how}): 0, every steered block recomputed in the backward";
        if (backend is not CudaBipoBackend { LastKeep: var (budget, blocks) })
            return $"keep budget ({how}): {(keepBytes == BipoOptions.AutoKeep ? BipoOptions.DefaultKeepBytes : keepBytes) >> 20} MiB of host memory";
        return $"keep budget ({how}): {budget >> 20} MiB per device at the last training batch, which kept the activations of the lowest " +
               $"{blocks} steered blocks and the top one instead of recomputing them";
    }
}
