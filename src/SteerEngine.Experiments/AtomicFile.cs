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
}
