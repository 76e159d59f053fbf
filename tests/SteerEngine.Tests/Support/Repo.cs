namespace SteerEngine.Tests.Support;

/// <summary>Paths inside the repository, found from the test binaries' location.</summary>
public static class Repo
{
    public static string Root { get; } = FindRoot();

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "SteerEngine.sln"))) return dir.FullName;
        throw new InvalidOperationException("could not find the repository root (SteerEngine.sln) above " + AppContext.BaseDirectory);
    }

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);
}
