using SteerEngine.Model;
using SteerEngine.Tests.Support;
using SteerEngine.Training;

namespace SteerEngine.Tests.Training;

[TestFixture]
public class PreferenceDataTests
{
    static LanguageModel? _lm;
    static LanguageModel Lm => _lm ??= LanguageModel.Load(TestModels.Get("tiny"));

    [OneTimeTearDown]
    public void Dispose() => _lm?.Dispose();

    static string Write(string name, params string[] lines)
    {
        string path = Path.Combine(TestModels.TempDir("bipo-data"), name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Test]
    public void Csv_response_is_space_answer_eos_after_the_chat_prompt()
    {
        string path = Write("a.csv", "question,matching,not_matching", "\"Hi, there?\",(A) yes,(B) no");
        PreferencePair p = PreferenceData.Load(path, Lm, system: "Be brief.").Single();
        int eos = Lm.Tokenizer.TokenToId(Lm.Tokenizer.EosToken!)!.Value;
        Assert.That(p.Prompt, Is.EqualTo(Lm.EncodePrompt("Hi, there?", "Be brief.")));
        Assert.That(p.Chosen, Is.EqualTo(Lm.Tokenizer.Encode(" (A) yes", addBos: false).Append(eos)));
        Assert.That(p.Rejected, Is.EqualTo(Lm.Tokenizer.Encode(" (B) no", addBos: false).Append(eos)));
    }

    [Test]
    public void Jsonl_plain_and_chat_records_and_text_give_the_same_pair()
    {
        string path = Write("a.jsonl",
            """{"prompt": "Hello?", "chosen": "Yes.", "rejected": "No."}""",
            "",
            """{"messages": [{"role": "user", "content": "Hello?"}], "chosen": [{"role": "assistant", "content": "Yes."}], "rejected": "No."}""");
        var pairs = PreferenceData.Load(path, Lm).Append(PreferenceData.FromText(Lm, "Hello?", "Yes.", "No.")).ToList();
        Assert.That(pairs, Has.Count.EqualTo(3));
        foreach (PreferencePair other in pairs.Skip(1))
        {
            Assert.That(other.Prompt, Is.EqualTo(pairs[0].Prompt));
            Assert.That(other.Chosen, Is.EqualTo(pairs[0].Chosen));
            Assert.That(other.Rejected, Is.EqualTo(pairs[0].Rejected));
        }
    }

    [Test]
    public void Csv_missing_a_column_names_file_line_and_column()
    {
        string path = Write("bad.csv", "question,matching", "q,a");
        var e = Assert.Throws<InvalidDataException>(() => PreferenceData.Load(path, Lm));
        Assert.That(e!.Message, Is.EqualTo($"{path}:1: missing column 'not_matching' (expected question,matching,not_matching)"));
    }

    [Test]
    public void Csv_row_with_too_few_fields_names_its_line()
    {
        string path = Write("short.csv", "question,matching,not_matching", "q,a,b", "q2,a2");
        var e = Assert.Throws<InvalidDataException>(() => PreferenceData.Load(path, Lm));
        Assert.That(e!.Message, Does.StartWith($"{path}:3: ").And.Not.Contain("\n"));
    }

    [Test]
    public void Broken_jsonl_line_names_file_and_line()
    {
        string path = Write("bad.jsonl", """{"prompt": "a", "chosen": "b", "rejected": "c"}""", """{"prompt": "a", "chosen": """);
        var e = Assert.Throws<InvalidDataException>(() => PreferenceData.Load(path, Lm));
        Assert.That(e!.Message, Does.StartWith($"{path}:2: not valid JSON").And.Not.Contain("\n"));
    }

    [Test]
    public void Jsonl_record_without_rejected_names_the_field()
    {
        string path = Write("missing.jsonl", """{"prompt": "a", "chosen": "b"}""");
        var e = Assert.Throws<InvalidDataException>(() => PreferenceData.Load(path, Lm));
        Assert.That(e!.Message, Is.EqualTo($"{path}:1: missing field 'rejected'"));
    }
}
