using System.Runtime.InteropServices;

namespace SteerEngine.Model;

/// <summary>Hands pages of a read-only file mapping back to the OS (they are re-read from the file if touched again).</summary>
static unsafe partial class MappedPages
{
    const int MadvDontNeed = 4;
    const long Page = 4096;

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);

    /// <summary>The whole pages inside [data, data + bytes); the partial pages at either end stay (a neighbour may be using them).</summary>
    public static void Release(byte* data, long bytes)
    {
        if (!OperatingSystem.IsLinux() || s_unavailable || bytes <= 0) return;
        long start = ((long)data + Page - 1) / Page * Page, end = ((long)data + bytes) / Page * Page;
        if (end <= start) return;
        try
        {
            Madvise((void*)start, (nuint)(end - start), MadvDontNeed); // advisory: a failure only leaves pages resident
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_unavailable = true; // a libc the runtime cannot bind: the pages simply stay resident
        }
    }

    static bool s_unavailable;
}
