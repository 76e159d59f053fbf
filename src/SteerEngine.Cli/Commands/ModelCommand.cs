using System.CommandLine;
using Spectre.Console;
using SteerEngine.Model;

namespace SteerEngine.Cli.Commands;

/// <summary><c>steer model init</c>: write a random-weight model of a real shape.</summary>
public static class ModelCommand
{
    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = $"one of: {string.Join(", ", ModelShapes.Names)}", Required = true };
        var seed = new Option<int>("--seed") { Description = "weights depend only on this", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "directory to write (HF layout)", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "bf16 | f16 | f32", DefaultValueFactory = _ => "bf16" };
        var init = new Command("init", "write a random-weight model in the Hugging Face layout") { shape, seed, output, dtype };
        init.SetAction(p => CliErrors.Run(() =>
        {
            string dir = p.GetValue(output)!;
            DType type = p.GetValue(dtype) switch
            {
                "bf16" => DType.BF16,
                "f16" => DType.F16,
                "f32" => DType.F32,
                var other => throw new ArgumentException($"--dtype '{other}' is not one of bf16, f16, f32"),
            };
            ModelShapes.Get(p.GetValue(shape)!); // validate the name before any work
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"writing {p.GetValue(shape)}", maxValue: 1.0);
                    RandomModel.Write(p.GetValue(shape)!, p.GetValue(seed), dir, type, f => task.Value = f);
                    task.Value = 1.0;
                });
            Console.WriteLine($"wrote {p.GetValue(shape)} (seed {p.GetValue(seed)}) to {dir}");
            return 0;
        }));
        return new Command("model", "model files") { init };
    }
}
