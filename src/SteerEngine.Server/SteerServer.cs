using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SteerEngine.Server.Batches;
using SteerEngine.Server.Http;
using SteerEngine.Server.Serving;

namespace SteerEngine.Server;

/// <summary>
/// <c>steer serve</c>: Kestrel with the OpenAI-compatible routes over one <see cref="GenerationEngine"/>
/// per model. Binds 127.0.0.1 by default; SIGTERM stops accepting, drains in-flight requests, then
/// stops the engines (batch jobs resume at the next start).
/// </summary>
public sealed class SteerServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ServingStack _stack;
    readonly BatchRunner _batches;

    SteerServer(WebApplication app, ServingStack stack, BatchRunner batches)
    {
        _app = app;
        _stack = stack;
        _batches = batches;
    }

    /// <summary>The served models (for benchmarks that compare the server with the engine alone).</summary>
    public IReadOnlyList<ServedModel> Models => _stack.Catalog.Models;

    /// <summary>The address it listens on, once started (with port 0, the port the system picked).</summary>
    public Uri BaseAddress => new(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    public static SteerServer Create(ServerOptions options, Action<string>? log = null)
    {
        options.Validate();
        log ??= _ => { };
        var stack = new ServingStack(options, log);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = options.DrainTimeout);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        WebApplication app = builder.Build();

        string dataDir = options.DataDirectory ?? Path.Combine(Path.GetTempPath(), "steer-serve-data");
        var files = new FileStore(Path.Combine(dataDir, "files"));
        var execution = new BatchExecution(stack.BatchLines, options.Limits, ServingStack.BatchConcurrency(options));
        var batches = new BatchRunner(new BatchStore(Path.Combine(dataDir, "batches")), files, execution, log);
        Routes.Map(app, new Routes.Services(stack, files, batches, options));
        app.Lifetime.ApplicationStopping.Register(batches.Stop);
        app.Lifetime.ApplicationStarted.Register(batches.ResumeAll);
        return new SteerServer(app, stack, batches);
    }

    public Task StartAsync(CancellationToken cancel = default) => _app.StartAsync(cancel);

    /// <summary>Serves until SIGTERM or Ctrl+C, then drains; <paramref name="started"/> gets the bound address.</summary>
    public async Task RunAsync(Action<Uri>? started = null)
    {
        await _app.StartAsync();
        started?.Invoke(BaseAddress);
        await _app.WaitForShutdownAsync();
    }

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        _batches.Stop();
        _stack.Dispose();
    }
}
