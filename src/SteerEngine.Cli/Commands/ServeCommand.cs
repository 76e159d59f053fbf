using System.CommandLine;
using SteerEngine.Server;
using SteerEngine.Server.Http;

namespace SteerEngine.Cli.Commands;

/// <summary><c>steer serve</c>: the OpenAI-compatible HTTP server with per-request steering (README "Serving").</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model") { Description = "model directory (repeat to serve several; the request's 'model' picks one)", Required = true };
        var names = new Option<string[]>("--model-name") { Description = "name requests use for the --model of the same position (default: its directory name)" };
        var backend = new Option<string>("--backend") { Description = "cpu | cuda | cuda-emu", DefaultValueFactory = _ => "cpu" };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact", DefaultValueFactory = _ => "auto" };
        var tp = new Option<int>("--tp") { Description = "tensor-parallel devices (cuda, cuda-emu)", DefaultValueFactory = _ => 1 };
        var host = new Option<string>("--host") { Description = "address to bind; anything but loopback needs --api-key", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { DefaultValueFactory = _ => 8000 };
        var vectorsDir = new Option<string?>("--vectors") { Description = "directory of named steering vectors (file name = vector name)" };
        var vector = new Option<string[]>("--vector") { Description = "NAME=FILE: one named steering vector (repeatable)" };
        var preset = new Option<string[]>("--preset") { Description = "ALIAS=VECTOR@LAYERxMULT[+...]: a model name whose requests are steered (repeatable)" };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY' on /v1 routes" };
        var dataDir = new Option<string?>("--data-dir") { Description = "where uploaded files and batch jobs persist (default: steer-serve-data in the temp directory)" };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together per model", DefaultValueFactory = _ => 64 };
        var maxWaiting = new Option<int>("--max-waiting") { Description = "requests that may wait for a slot; more get 429", DefaultValueFactory = _ => 512 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "largest max_tokens a request may ask for", DefaultValueFactory = _ => 4096 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "largest request body (uploads included)", DefaultValueFactory = _ => 64L << 20 };

        var command = new Command("serve", "OpenAI-compatible HTTP server; every request may carry its own steering")
        {
            models, names, backend, kernels, tp, host, port, vectorsDir, vector, preset, apiKey, dataDir, maxBatch, maxWaiting, maxTokens, maxBody,
        };
        command.SetAction(p => CliErrors.Run(() =>
        {
            string[] dirs = p.GetValue(models) ?? [];
            string[] given = p.GetValue(names) ?? [];
            if (given.Length > dirs.Length) throw new ArgumentException($"{given.Length} --model-name for {dirs.Length} --model");
            var options = new ServerOptions
            {
                Models = dirs.Select((d, i) => new ModelSource(d, i < given.Length ? given[i] : null)).ToList(),
                Backend = p.GetValue(backend)!,
                Kernels = p.GetValue(kernels)!,
                TensorParallel = p.GetValue(tp),
                Host = p.GetValue(host)!,
                Port = p.GetValue(port),
                VectorsDirectory = p.GetValue(vectorsDir),
                Vectors = p.GetValue(vector) ?? [],
                Presets = p.GetValue(preset) ?? [],
                ApiKey = p.GetValue(apiKey),
                DataDirectory = p.GetValue(dataDir),
                MaxBatch = p.GetValue(maxBatch),
                MaxWaiting = p.GetValue(maxWaiting),
                MaxBodyBytes = p.GetValue(maxBody),
                Limits = new ServerLimits(MaxTokens: p.GetValue(maxTokens)),
            };
            options.Validate();
            var server = SteerServer.Create(options, Console.Error.WriteLine);
            try { server.RunAsync(address => Console.Error.WriteLine($"serving on {address} (OpenAI API under /v1)")).GetAwaiter().GetResult(); }
            finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
            return 0;
        }));
        return command;
    }
}
