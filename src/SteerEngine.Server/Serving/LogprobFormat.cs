using SteerEngine.Generation;
using SteerEngine.Server.Http;
using SteerEngine.Tokenization;

namespace SteerEngine.Server.Serving;

/// <summary>Log-probs in the wire's shapes: token text, its UTF-8 bytes, the alternatives.</summary>
public static class LogprobFormat
{
    public static string Text(TextTokenizer t, int id) => id < t.VocabSize ? t.DecodeToken(id) : "";
    public static int[] Bytes(TextTokenizer t, int id) => id < t.VocabSize ? t.TokenBytes(id).ToArray().Select(b => (int)b).ToArray() : [];

    public static TokenLogprobEntry Entry(TextTokenizer t, int token, float logprob, TokenLogprob[]? top) =>
        new(Text(t, token), logprob, Bytes(t, token), (top ?? []).Select(a => new TopLogprobEntry(Text(t, a.Token), a.Logprob, Bytes(t, a.Token))).ToList());

    public static ChatLogprobs Chat(TextTokenizer t, GenerationResult r) =>
        new(r.Tokens.Select((token, i) => Entry(t, token, r.TokenLogprobs![i], r.TopLogprobs?[i])).ToList());

    /// <summary>The alternatives as a token → log-prob map (the first of equal token texts wins).</summary>
    public static Dictionary<string, float> TopMap(TextTokenizer t, TokenLogprob[] top)
    {
        var map = new Dictionary<string, float>();
        foreach (TokenLogprob a in top) map.TryAdd(Text(t, a.Token), a.Logprob);
        return map;
    }
}
