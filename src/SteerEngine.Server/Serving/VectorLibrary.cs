using System.Collections.Concurrent;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>
/// The named steering vectors a request may use: files from the configured directory and --vector
/// options, read at start, plus vectors clients upload (held in memory only). A request names a
/// vector; no path from a request ever reaches the file system.
/// </summary>
public sealed class VectorLibrary
{
    static readonly string[] Extensions = [".safetensors", ".npy", ".pt", ".gguf"];
    readonly ConcurrentDictionary<string, SteeringVector> _vectors = new(StringComparer.Ordinal);

    /// <summary>What GET /v1/steering/vectors shows of a vector (not where it came from: no server paths).</summary>
    public sealed record Entry(string Name, int Hidden, bool PerLayer, int Rows);

    /// <summary>Every vector file in <paramref name="directory"/> (not recursive), named by its file name without extension.</summary>
    public void AddDirectory(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: vectors directory not found");
        foreach (string file in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
            if (Extensions.Contains(Path.GetExtension(file).ToLowerInvariant()))
                Add(Path.GetFileNameWithoutExtension(file), VectorFile.Read(file));
    }

    /// <summary>A <c>NAME=FILE</c> option.</summary>
    public void AddOption(string option)
    {
        int eq = option.IndexOf('=');
        if (eq <= 0 || eq == option.Length - 1) throw new ArgumentException($"--vector '{option}': expected NAME=FILE");
        Add(option[..eq], VectorFile.Read(option[(eq + 1)..]));
    }

    public void Add(string name, SteeringVector vector)
    {
        CheckName(name);
        _vectors[name] = vector;
    }

    public static void CheckName(string name)
    {
        if (name.Length is 0 or > 128 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            throw new ArgumentException($"vector name '{name}' must be 1–128 letters, digits, '_', '-' or '.'");
    }

    public SteeringVector? Find(string name) => _vectors.GetValueOrDefault(name);

    public IReadOnlyList<Entry> List() =>
        _vectors.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => new Entry(kv.Key, kv.Value.Hidden, kv.Value.PerLayer, kv.Value.Rows)).ToList();
}
