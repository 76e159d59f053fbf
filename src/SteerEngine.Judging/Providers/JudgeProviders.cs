namespace SteerEngine.Judging.Providers;

/// <summary>Opens the judge named by <c>--provider</c>: openai, anthropic (both behind the retry pipeline) or local:MODEL_DIR.</summary>
public static class JudgeProviders
{
    public const string OpenAiUrl = "https://api.openai.com/v1";
    public const string AnthropicUrl = "https://api.anthropic.com";

    public static IJudgeProvider Open(string provider, string? model, string? baseUrl, string? keyVariable, RetryOptions retry, int maxConcurrent)
    {
        if (provider.StartsWith("local:", StringComparison.Ordinal))
        {
            string dir = provider["local:".Length..];
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--provider {provider}: model directory '{dir}' not found");
            return LocalJudge.Open(dir, maxConcurrent);
        }
        switch (provider)
        {
            case "openai":
            {
                return new RetryingJudge(new OpenAiJudge(OpenAi(model, baseUrl, keyVariable, retry.Timeout)), retry);
            }
            case "anthropic":
            {
                string key = ApiKey(keyVariable ?? "ANTHROPIC_API_KEY");
                return new RetryingJudge(new AnthropicJudge(Url(baseUrl ?? AnthropicUrl), Model(model, provider), key, retry.Timeout), retry);
            }
            default:
                throw new ArgumentException($"--provider '{provider}': expected openai, anthropic or local:MODEL_DIR");
        }
    }

    /// <summary>The OpenAI-compatible endpoint of --model, --base-url and --api-key-env (also what --batch talks to).</summary>
    public static OpenAiEndpoint OpenAi(string? model, string? baseUrl, string? keyVariable, TimeSpan timeout) =>
        new(Url(baseUrl ?? OpenAiUrl), Model(model, "openai"), ApiKey(keyVariable ?? "OPENAI_API_KEY"), timeout);

    static string Model(string? model, string provider) =>
        string.IsNullOrWhiteSpace(model) ? throw new ArgumentException($"--provider {provider} needs --model (the judge model's name)") : model;

    static Uri Url(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out Uri? u) && u.Scheme is "http" or "https" ? u
            : throw new ArgumentException($"--base-url '{url}' is not an http(s) URL");

    static string ApiKey(string variable)
    {
        string? key = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrEmpty(key) ? throw new ArgumentException($"the API key variable {variable} is not set (--api-key-env names another)") : key;
    }
}
