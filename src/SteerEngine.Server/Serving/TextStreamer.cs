using SteerEngine.Tokenization;

namespace SteerEngine.Server.Serving;

/// <summary>
/// Text deltas of a response as its tokens arrive. A delta never ends inside a UTF-8 character, and the
/// last (longest stop − 1) characters are held back so a stop string is never sent before it is cut.
/// </summary>
public sealed class TextStreamer(TextTokenizer tokenizer, IReadOnlyList<string> stops)
{
    readonly List<int> _tokens = [];
    readonly int _holdBack = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
    int _sent;

    public string Add(int token)
    {
        _tokens.Add(token);
        string text = tokenizer.Decode(_tokens.ToArray(), skipSpecialTokens: true);
        int end = text.Length;
        while (end > 0 && text[end - 1] == '\uFFFD') end--;
        end -= _holdBack;
        if (end <= _sent) return "";
        string delta = text[_sent..end];
        _sent = end;
        return delta;
    }

    /// <summary>What is left to send of the final text (cut at a stop string by the engine).</summary>
    public string Finish(string finalText) => finalText.Length > _sent ? finalText[_sent..] : "";
}
