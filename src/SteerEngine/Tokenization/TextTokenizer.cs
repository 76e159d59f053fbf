using System.Buffers;
using System.Text;
using Microsoft.ML.Tokenizers;
using SteerEngine.Tokenization.Nfc;

namespace SteerEngine.Tokenization;

/// <summary>
/// A Hugging Face byte-level BPE tokenizer (Llama 3, Qwen2/3) loaded from a model directory's
/// tokenizer.json and tokenizer_config.json. Encoding follows the Rust <c>tokenizers</c> library:
/// added tokens are cut out of the text first, the rest is split by the pre-tokenizer regex, and
/// each piece is looked up whole (when <c>ignore_merges</c>) or merged by Microsoft.ML.Tokenizers'
/// BPE. Everything is built once at load; instances are safe to share between threads.
/// </summary>
public sealed class TextTokenizer
{
    const string LlamaBos = "<|begin_of_text|>";
    // <|eom_id|> (Llama 3.1: end of a tool-call message) is not among them: it ends generation when
    // the model's generation_config.json lists it, as Llama 3.1 Instruct's does.
    static readonly string[] EndOfTurnTokens = ["<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>"];

    readonly BpeTokenizer _bpe;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabBySpan;
    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, int> _addedIds;
    readonly AddedTokenMatcher _addedTokens;
    readonly PreTokenSplitter _splitter;
    readonly bool _ignoreMerges;
    readonly bool _normalizeNfc;
    readonly byte[]?[] _tokenBytes; // [VocabSize] the UTF-8 bytes each id stands for; null for unused ids
    readonly bool[] _isSpecial;     // [VocabSize] added tokens marked "special", dropped by skipSpecialTokens

    public int VocabSize { get; }
    public string? BosToken { get; }
    public int? BosTokenId { get; }
    public string? EosToken { get; }
    /// <summary>
    /// Every id that ends a generation: eos_token first, then the end-of-turn tokens the vocabulary
    /// has, then the ids of generation_config.json's eos_token_id (Llama 3.1 Instruct: 128001, 128008
    /// &lt;|eom_id|&gt;, 128009).
    /// </summary>
    public int[] EosTokenIds { get; }
    /// <summary>tokenizer_config.json's chat_template, raw; null when the file has none.</summary>
    public string? ChatTemplate { get; }

    TextTokenizer(TokenizerDefinition definition, string tokenizerPath)
    {
        try
        {
            _bpe = BpeTokenizer.Create(new BpeOptions(definition.Vocab) { Merges = definition.Merges, ByteLevel = true });
        }
        catch (InvalidOperationException e)
        {
            throw new TokenizerFormatException($"{tokenizerPath}: {e.Message}", e);
        }
        try
        {
            _splitter = new PreTokenSplitter(definition.SplitPattern);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException($"{tokenizerPath}: the pre_tokenizer regex is not supported by .NET ({e.Message})", e);
        }

        _vocab = definition.Vocab;
        _vocabBySpan = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _addedIds = definition.AddedTokens.ToDictionary(t => t.Content, t => t.Id, StringComparer.Ordinal);
        _addedTokens = new AddedTokenMatcher(definition.AddedTokens);
        _ignoreMerges = definition.IgnoreMerges;
        _normalizeNfc = definition.NormalizeNfc;

        VocabSize = Math.Max(_vocab.Values.Max(), definition.AddedTokens.Count == 0 ? -1 : definition.AddedTokens.Max(t => t.Id)) + 1;
        _tokenBytes = new byte[VocabSize][];
        _isSpecial = new bool[VocabSize];
        foreach ((string token, int id) in _vocab)
            _tokenBytes[id] = ByteLevelAlphabet.Decode(token) ?? Encoding.UTF8.GetBytes(token);
        foreach (AddedToken token in definition.AddedTokens)
        {
            _tokenBytes[token.Id] = Encoding.UTF8.GetBytes(token.Content);
            _isSpecial[token.Id] = token.Special;
        }

        BosToken = definition.BosToken ?? (_addedIds.ContainsKey(LlamaBos) ? LlamaBos : null);
        BosTokenId = BosToken is null ? null : TokenToId(BosToken);
        EosToken = definition.EosToken ?? EndOfTurnTokens.FirstOrDefault(t => TokenToId(t) is not null);
        var eos = new List<int>();
        foreach (string? token in EndOfTurnTokens.Prepend(EosToken))
            if (token is not null && TokenToId(token) is int id && !eos.Contains(id))
                eos.Add(id);
        foreach (int id in definition.GenerationEosIds)
            if (id < VocabSize && !eos.Contains(id))
                eos.Add(id);
        EosTokenIds = [.. eos];
        ChatTemplate = definition.ChatTemplate;
    }

    /// <summary>Reads modelDir/tokenizer.json and, when present, modelDir/tokenizer_config.json.</summary>
    /// <exception cref="TokenizerFormatException">A file is missing, malformed, or of a kind not supported.</exception>
    public static TextTokenizer Load(string modelDir) =>
        new(TokenizerDefinition.Read(modelDir), Path.Combine(modelDir, "tokenizer.json"));

    /// <summary>
    /// Token ids of <paramref name="text"/>; added-token strings inside it (such as "&lt;|eot_id|&gt;")
    /// become their ids, as in Hugging Face. A rendered chat prompt already starts with BOS, so
    /// encode it with <paramref name="addBos"/> false.
    /// </summary>
    public int[] Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos && BosTokenId is int bos)
            ids.Add(bos);

        var segments = new List<AddedTokenMatcher.Segment>();
        _addedTokens.Split(text, segments);
        var pieces = new List<(int Offset, int Length)>();
        foreach (AddedTokenMatcher.Segment segment in segments)
        {
            if (segment.TokenId >= 0)
            {
                ids.Add(segment.TokenId);
                continue;
            }
            ReadOnlySpan<char> part = text.AsSpan(segment.Offset, segment.Length);
            // Qwen's NFC normalizer (managed, so it holds under InvariantGlobalization too).
            if (_normalizeNfc)
                part = UnicodeNfc.Normalize(part.ToString());
            pieces.Clear();
            _splitter.Split(part, pieces);
            foreach ((int offset, int length) in pieces)
                EncodePiece(part.Slice(offset, length), ids);
        }
        return [.. ids];
    }

    void EncodePiece(ReadOnlySpan<char> piece, List<int> ids)
    {
        if (_ignoreMerges && LookUpWhole(piece) is int whole)
        {
            ids.Add(whole);
            return;
        }
        ids.AddRange(_bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
    }

    int? LookUpWhole(ReadOnlySpan<char> piece)
    {
        int maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
        byte[]? rented = maxBytes > 512 ? ArrayPool<byte>.Shared.Rent(maxBytes) : null;
        Span<byte> bytes = rented ?? stackalloc byte[512];
        int byteCount = Encoding.UTF8.GetBytes(piece, bytes);

        char[]? rentedChars = byteCount > 512 ? ArrayPool<char>.Shared.Rent(byteCount) : null;
        Span<char> mapped = rentedChars ?? stackalloc char[512];
        for (int i = 0; i < byteCount; i++)
            mapped[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
        int? id = _vocabBySpan.TryGetValue(mapped[..byteCount], out int found) ? found : null;

        if (rented is not null)
            ArrayPool<byte>.Shared.Return(rented);
        if (rentedChars is not null)
            ArrayPool<char>.Shared.Return(rentedChars);
        return id;
    }

    /// <summary>Text of <paramref name="ids"/>; bytes that do not form valid UTF-8 become U+FFFD.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        int total = 0;
        foreach (int id in ids)
            if (!(skipSpecialTokens && _isSpecial[CheckId(id)]))
                total += TokenBytes(id).Length;

        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(total, 1));
        int written = 0;
        foreach (int id in ids)
        {
            if (skipSpecialTokens && _isSpecial[id])
                continue;
            ReadOnlySpan<byte> bytes = TokenBytes(id);
            bytes.CopyTo(buffer.AsSpan(written));
            written += bytes.Length;
        }
        string text = Encoding.UTF8.GetString(buffer, 0, written);
        ArrayPool<byte>.Shared.Return(buffer);
        return text;
    }

    /// <summary>
    /// Text of one token. A token can hold part of a multi-byte character, which then shows as
    /// U+FFFD; a streaming decoder should join <see cref="TokenBytes"/> instead.
    /// </summary>
    public string DecodeToken(int id) => Encoding.UTF8.GetString(TokenBytes(id));

    /// <summary>The raw bytes one token stands for.</summary>
    public ReadOnlySpan<byte> TokenBytes(int id) => _tokenBytes[CheckId(id)];

    /// <summary>
    /// Id of a token as it is written in tokenizer.json: an added token's content, or a vocabulary
    /// entry in its byte-level spelling ("Ġthe" for " the").
    /// </summary>
    public int? TokenToId(string token) =>
        _addedIds.TryGetValue(token, out int id) || _vocab.TryGetValue(token, out id) ? id : null;

    int CheckId(int id)
    {
        if ((uint)id >= (uint)VocabSize || _tokenBytes[id] is null)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is not in the vocabulary (size {VocabSize})");
        return id;
    }
}
