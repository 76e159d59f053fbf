using System.CommandLine;
using Spectre.Console;
using SteerEngine.Server;
using SteerEngine.Server.Batches;
using SteerEngine.Server.Serving;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer run-batch</c>: an OpenAI Batch API input file run offline, through the same serving classes
/// as <c>steer serve</c>; resumable (lines already in the output are skipped).
/// </summary>
public static class RunBatchCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input", "-i") { Description = "Batch API input file (JSONL: custom_id, method, url, body)", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "output JSONL (custom_id, response, error); rerun to resume", Required = true };
        var models = new Option<string[]>("--model") { Description = "model directory (repeatable; each line's body.model picks one)", Required = true };
        var names = new Option<string[]>("--model-name") { Description = "name lines use for the --model of the same position (default: its directory name)" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu", DefaultValueFactory = _ => "cpu" };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact", DefaultValueFactory = _ => "auto" };
        var vectorsDir = new Option<string?>("--vectors") { Description = "directory of named steering vectors" };
        var vector = new Option<string[]>("--vector") { Description = "NAME=FILE: one named steering vector (repeatable)" };
        var preset = new Option<string[]>("--preset") { Description = "ALIAS=VECTOR@LAYERxMULT[+...]: a steered model alias (repeatable)" };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together", DefaultValueFactory = _ => 64 };

        var command = new Command("run-batch", "run an OpenAI Batch API file offline (same format as POST /v1/batches), resumable")
        {
            input, output, models, names, backend, kernels, vectorsDir, vector, preset, maxBatch,
        };
        command.SetAction(p => CliErrors.Run(() =>
        {
            string inPath = p.GetValue(input)!, outPath = p.GetValue(output)!;
            if (!File.Exists(inPath)) throw new FileNotFoundException($"{inPath}: batch input file not found");
            var lines = BatchInput.Read(inPath, inPath);
            string[] dirs = p.GetValue(models) ?? [];
            string[] given = p.GetValue(names) ?? [];
            var options = new ServerOptions
            {
                Models = dirs.Select((d, i) => new ModelSource(d, i < given.Length ? given[i] : null)).ToList(),
                Backend = p.GetValue(backend)!,
                Kernels = p.GetValue(kernels)!,
                VectorsDirectory = p.GetValue(vectorsDir),
                Vectors = p.GetValue(vector) ?? [],
                Presets = p.GetValue(preset) ?? [],
                MaxBatch = Math.Max(1, p.GetValue(maxBatch)),
            };
            options.Validate();
            using var stack = new ServingStack(options, Console.Error.WriteLine);
            var execution = new BatchExecution(stack.BatchLines, options.Limits, ServingStack.BatchConcurrency(options));
            BatchExecution.Progress result = null!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("requests", maxValue: lines.Count);
                    result = execution.Run(lines, outPath, outPath, pr =>
                    {
                        task.Value = pr.Done;
                        task.Description = $"requests {pr.Done}/{pr.Total} ({pr.Failed} failed)";
                    }, CancellationToken.None).GetAwaiter().GetResult();
                });
            Console.WriteLine($"{outPath}: {result.Done} of {result.Total} requests done, {result.Failed} failed");
            return result.Failed > 0 ? 1 : 0;
        }));
        return command;
    }
}
