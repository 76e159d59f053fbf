namespace SteerEngine.Server.Serving;

/// <summary>Object ids in OpenAI's style (<c>chatcmpl-…</c>, <c>file-…</c>, <c>batch_…</c>) and Unix timestamps.</summary>
public static class Ids
{
    public static string New(string prefix, char separator = '-') => prefix + separator + Guid.NewGuid().ToString("N")[..24];
    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}
