using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Server.Batches;

namespace SteerEngine.Server.Serving;

/// <summary>
/// The models, their engines, the named vectors and the serving classes, without HTTP: what the server
/// routes to and what <c>steer run-batch</c> drives directly.
/// </summary>
public sealed class ServingStack : IDisposable
{
    public ModelCatalog Catalog { get; } = new();
    public VectorLibrary Vectors { get; } = new();
    public ServerMetrics Metrics { get; }
    public ChatCompletionService Chat { get; }
    public CompletionService Completions { get; }
    public BatchLineRunner BatchLines { get; }

    public ServingStack(ServerOptions options, Action<string> log)
    {
        Metrics = new ServerMetrics(Catalog);
        Chat = new ChatCompletionService(Catalog, Vectors, options.Limits, Metrics);
        Completions = new CompletionService(Catalog, Vectors, options.Limits, Metrics);
        BatchLines = new BatchLineRunner(Chat, Completions);
        try
        {
            if (options.VectorsDirectory is string dir) Vectors.AddDirectory(dir);
            foreach (string v in options.Vectors) Vectors.AddOption(v);
            foreach (ModelSource source in options.Models)
            {
                var lm = LanguageModel.Load(source.Directory, w => log($"warning: {w}"), CpuKernels.Parse(options.Kernels), options.Backend, options.TensorParallel);
                var engine = new GenerationEngine(lm.Model, lm.Tokenizer,
                    new EngineOptions(new SchedulerOptions(options.MaxBatch, options.MaxTokensPerStep), options.MaxWaiting));
                Catalog.Add(new ServedModel(source.ServedName, lm, engine));
                log($"model '{source.ServedName}' from {source.Directory}: {lm.Config.NumLayers} layers, hidden {lm.Config.HiddenSize}");
            }
            foreach (string preset in options.Presets) Catalog.AddPreset(preset, Vectors);
        }
        catch
        {
            Catalog.Dispose();
            throw;
        }
    }

    /// <summary>Batch lines in flight at once: enough to keep the batch full, fewer than the waiting queue holds.</summary>
    public static int BatchConcurrency(ServerOptions options) => Math.Clamp(options.MaxBatch * 2, 1, options.MaxWaiting);

    public void Dispose() => Catalog.Dispose();
}
