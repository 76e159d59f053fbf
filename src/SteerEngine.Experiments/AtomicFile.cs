using System.Text;

namespace SteerEngine.Experiments;

/// <summary>Files that appear whole or not at all: written beside their place under a unique name, fsync'd, then renamed over it.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => Write(path, s => s.Write(new UTF8Encoding(false).GetBytes(text)));

    public static void Write(string path, Action<Stream> write)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        string tmp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                write(f);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>
    /// Deletes the temporary files a killed process <paramref name="pid"/> left in <paramref name="directory"/>
    /// (a SIGKILL between create and rename leaves one behind); called when that process's lock is taken over.
    /// </summary>
    public static void RemoveOrphans(string directory, int pid)
    {
        if (!Directory.Exists(directory)) return;
        foreach (string tmp in Directory.EnumerateFiles(directory, $"*.{pid}.*.tmp"))
            File.Delete(tmp);
    }
}
