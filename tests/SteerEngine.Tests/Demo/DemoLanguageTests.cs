using System.Text.Json;
using SteerEngine.Cli.Demo;

namespace SteerEngine.Tests.Demo;

/// <summary>The C# port of the demo language's measurers against models/demo/corpus.py.</summary>
public class DemoLanguageTests
{
    static readonly DemoLanguage Language = DemoLanguage.Load(DemoFiles.Lexicon);

    static List<string> SampleAnswers(int n, int seed) =>
        DemoFiles.Python("corpus.py", $"sample -n {n} --seed {seed}")
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("assistant").GetString()!).ToList();

    /// <summary>Corpus answers, and the same answers damaged: words dropped, swapped, cut off, or shouted.</summary>
    static List<string> Texts()
    {
        var rng = new Random(5);
        var texts = new List<string>();
        foreach (string answer in SampleAnswers(60, 11))
        {
            texts.Add(answer);
            string[] words = answer.Split(' ');
            int i = rng.Next(words.Length), j = rng.Next(words.Length);
            texts.Add(string.Join(' ', words.Where((_, k) => k != i)));
            (words[i], words[j]) = (words[j], words[i]);
            texts.Add(string.Join(' ', words));
            texts.Add(answer[..rng.Next(answer.Length)]);
        }
        texts.AddRange(["", "happy happy sad", "Indeed, The Cat Is Quite Lovely.", "i feel glad today. i feel sad today!", "yeah, the cat is lovely and sad."]);
        return texts;
    }

    [Test]
    public void Measures_agree_with_the_python_generator_side()
    {
        List<string> texts = Texts();
        string input = string.Join('\n', texts.Select(t => JsonSerializer.Serialize(new { text = t })));
        string[] expected = DemoFiles.Python("corpus.py", "measure", input);
        Assert.That(expected, Has.Length.EqualTo(texts.Count));
        for (int i = 0; i < texts.Count; i++)
        {
            JsonElement py = JsonDocument.Parse(expected[i]).RootElement;
            DemoMeasure cs = Language.Measure(texts[i]);
            string what = $"text {i}: \"{texts[i]}\"";
            Assert.That(cs.Sentences, Is.EqualTo(py.GetProperty("sentences").GetInt32()), what);
            Assert.That(cs.WellFormed, Is.EqualTo(py.GetProperty("well_formed").GetInt32()), what);
            Assert.That(cs.Coherence, Is.EqualTo(py.GetProperty("coherence").GetDouble()).Within(1e-12), what);
            foreach (string trait in Language.Traits.Keys)
            {
                JsonElement rate = py.GetProperty(trait);
                if (rate.ValueKind == JsonValueKind.Null) Assert.That(cs.Rates[trait], Is.Null, what);
                else Assert.That(cs.Rates[trait], Is.EqualTo(rate.GetDouble()).Within(1e-12), what);
            }
        }
    }

    [Test]
    public void Every_generated_answer_is_well_formed_and_damage_is_caught()
    {
        foreach (string answer in SampleAnswers(200, 12))
            Assert.That(Language.Measure(answer).Coherence, Is.EqualTo(1.0), answer);
        Assert.That(Language.Measure("indeed, the cat is quite lovely.").Coherence, Is.EqualTo(1.0));
        Assert.That(Language.Measure("indeed, the cat are quite lovely.").Coherence, Is.EqualTo(0.0), "number agreement");
        Assert.That(Language.Measure("indeed, the cat is totally lovely.").Coherence, Is.EqualTo(0.0), "formal opener, casual intensifier");
        Assert.That(Language.Measure("the cat is quite lovely and sad.").Coherence, Is.EqualTo(0.0), "not a grammar line");
        Assert.That(Language.Measure("the cat is lovely.").Coherence, Is.EqualTo(0.0), "no formality word");
    }

    [Test]
    public void Trait_rates_count_words_of_each_value()
    {
        DemoMeasure m = Language.Measure("indeed, the cheerful cat laughs sadly. yeah, the dog is");
        Assert.That(m.Rates["mood"], Is.EqualTo(2 / 3.0).Within(1e-12));
        Assert.That(m.Rates["formality"], Is.EqualTo(0.5));
        Assert.That(m.Sentences, Is.EqualTo(1), "the unterminated fragment is not a sentence");
        Assert.That(Language.Measure("the dog.").Rates["mood"], Is.Null);
    }
}
