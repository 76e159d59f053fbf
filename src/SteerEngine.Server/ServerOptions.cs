using System.Net;
using SteerEngine.Server.Http;

namespace SteerEngine.Server;

/// <summary>A model directory to serve and the name requests use for it (default: the directory's name).</summary>
public sealed record ModelSource(string Directory, string? Name = null)
{
    public string ServedName => Name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Directory)));
}

/// <summary>Everything <c>steer serve</c> is configured with; the safety defaults live here.</summary>
public sealed class ServerOptions
{
    public required IReadOnlyList<ModelSource> Models { get; init; }
    public string Backend { get; init; } = "cpu";
    public string Kernels { get; init; } = "auto";
    public int TensorParallel { get; init; } = 1;
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; init; } = 8000;
    public string? VectorsDirectory { get; init; }
    public IReadOnlyList<string> Vectors { get; init; } = [];
    public IReadOnlyList<string> Presets { get; init; } = [];
    public string? ApiKey { get; init; }
    /// <summary>Where uploaded files and batch jobs persist (default: a folder under the system temp directory).</summary>
    public string? DataDirectory { get; init; }
    public long MaxBodyBytes { get; init; } = 64L << 20;
    public ServerLimits Limits { get; init; } = new();
    public int MaxBatch { get; init; } = 64;
    public int MaxTokensPerStep { get; init; } = 512;
    public int MaxWaiting { get; init; } = 512;
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public static bool IsLoopback(string host) =>
        host == "localhost" || (IPAddress.TryParse(host, out IPAddress? ip) && IPAddress.IsLoopback(ip));

    /// <summary>Throws an <see cref="ArgumentException"/> for a configuration the server refuses to start with.</summary>
    public void Validate()
    {
        if (Models.Count == 0) throw new ArgumentException("give at least one --model DIR");
        if (!IsLoopback(Host) && string.IsNullOrEmpty(ApiKey))
            throw new ArgumentException($"--host {Host} is reachable from other machines; give --api-key KEY too (or bind 127.0.0.1)");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port {Port} is not a TCP port");
        if (MaxBatch < 1 || MaxWaiting < 1 || MaxBodyBytes < 1024 || Limits.MaxTokens < 1)
            throw new ArgumentException("--max-batch, --max-waiting, --max-tokens must be ≥ 1 and --max-body-bytes ≥ 1024");
    }
}
