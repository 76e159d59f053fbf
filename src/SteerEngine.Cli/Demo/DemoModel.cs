namespace SteerEngine.Cli.Demo;

/// <summary>
/// Where the trained demo model (models/demo in the repository) is: beside the binaries, where the
/// build copies it, or in a models/demo folder above them; the environment variable overrides both.
/// </summary>
public static class DemoModel
{
    public const string DirectoryVariable = "STEER_DEMO_MODEL";
    public const string LexiconFile = "lexicon.json";

    public static string? FindDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrEmpty(fromEnvironment))
            return fromEnvironment;
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "demo");
            if (File.Exists(Path.Combine(candidate, "config.json")) && File.Exists(Path.Combine(candidate, LexiconFile)))
                return candidate;
        }
        return null;
    }

    /// <summary>The demo language of a model directory; a one-line error when the directory has none.</summary>
    public static DemoLanguage Language(string modelDir)
    {
        string path = Path.Combine(modelDir, LexiconFile);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: not found; steer demo needs a model trained on the demo language (models/demo)");
        return DemoLanguage.Load(path);
    }
}
