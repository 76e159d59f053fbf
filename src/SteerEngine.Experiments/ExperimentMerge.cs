namespace SteerEngine.Experiments;

/// <summary>
/// <c>steer experiment merge</c>: folds the output trees of shards that ran without a shared file system into one.
/// Finished outputs are copied in (vectors, metrics, generations, scores); work files, locks and failure notes are
/// not. A file present in both with different bytes is an error: shards of one experiment never write the same item.
/// </summary>
public static class ExperimentMerge
{
    public static int Merge(string target, IReadOnlyList<string> sources)
    {
        int copied = 0;
        foreach (string source in sources)
        {
            if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"{source}: shard output folder not found");
            string sourceConfig = Path.Combine(source, "config.json"), targetConfig = Path.Combine(target, "config.json");
            if (File.Exists(sourceConfig) && File.Exists(targetConfig) && File.ReadAllText(sourceConfig) != File.ReadAllText(targetConfig))
                throw new InvalidDataException($"{source}: its config.json differs from {targetConfig}: not a shard of the same experiment");
            if (File.Exists(sourceConfig) && !File.Exists(targetConfig))
            {
                AtomicFile.WriteAllText(targetConfig, File.ReadAllText(sourceConfig));
                copied++;
            }
            foreach (string top in new[] { "vector", "vector_evals" })
            {
                string dir = Path.Combine(source, top);
                if (!Directory.Exists(dir)) continue;
                foreach (string file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    if (ExperimentLayout.IsWorkFile(Path.GetRelativePath(source, file))) continue;
                    string to = Path.Combine(target, Path.GetRelativePath(source, file));
                    if (File.Exists(to))
                    {
                        if (!File.ReadAllBytes(to).AsSpan().SequenceEqual(File.ReadAllBytes(file)))
                            throw new InvalidDataException($"{file}: differs from {to}, which the merged tree already has");
                        continue;
                    }
                    AtomicFile.Write(to, s => { using var f = File.OpenRead(file); f.CopyTo(s); });
                    copied++;
                }
            }
        }
        return copied;
    }
}
