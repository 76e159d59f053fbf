using System.Text.Json;

namespace SteerEngine.Model;

/// <summary>
/// Parses JSON as strictly as the reference safetensors reader (serde_json) does, so that a
/// file it would refuse is refused here too, with a <see cref="ModelFormatException"/>.
/// </summary>
internal static class StrictJson
{
    // A repeated key would let two readers of one file disagree about which entry counts.
    static readonly JsonDocumentOptions Options = new() { AllowDuplicateProperties = false };

    /// <param name="path">The file, named in the error.</param>
    /// <param name="json">UTF-8 JSON text.</param>
    /// <param name="what">What the text is ("header", "index"), for the error.</param>
    public static JsonDocument Parse(string path, byte[] json, string what)
    {
        try
        {
            RejectUnpairedSurrogates(path, json, what);
            return JsonDocument.Parse(json, Options);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path}: {what} is not valid JSON ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    // An escaped lone surrogate such as "\ud800" passes the JSON reader and fails only when the
    // string is decoded, with InvalidOperationException (even inside JsonDocument.Parse, when it
    // checks for duplicate keys); decode every escaped string first to report it as bad JSON.
    // Malformed JSON throws JsonException here as it would in JsonDocument.Parse.
    static void RejectUnpairedSurrogates(string path, byte[] json, string what)
    {
        var reader = new Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped)
                continue;
            try
            {
                reader.GetString();
            }
            catch (InvalidOperationException e)
            {
                throw new ModelFormatException(
                    $"{path}: {what} is not valid JSON (string at byte {reader.TokenStartIndex} escapes an unpaired surrogate)", e);
            }
        }
    }
}
