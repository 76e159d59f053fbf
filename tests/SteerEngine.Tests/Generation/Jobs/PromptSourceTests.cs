using SteerEngine.Generation.Jobs;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Generation.Jobs;

[TestFixture]
public class PromptSourceTests
{
    static string Write(string name, string text)
    {
        string path = Path.Combine(TestModels.TempDir("prompts"), name);
        File.WriteAllText(path, text);
        return path;
    }

    [Test]
    public void Csv_fields_may_hold_quotes_commas_and_newlines()
    {
        string path = Write("p.csv", "id,question,extra\r\nq1,\"Hello, \"\"world\"\"\nsecond line\",x\nq2,plain,y\n");
        var prompts = PromptSource.Read(path);
        Assert.That(prompts.Select(p => p.Id), Is.EqualTo(new[] { "q1", "q2" }));
        Assert.That(prompts[0].Text, Is.EqualTo("Hello, \"world\"\nsecond line"));
    }

    [Test]
    public void Jsonl_with_a_configurable_field_and_row_numbers_as_ids()
    {
        string path = Write("p.jsonl", "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\"}\n");
        var prompts = PromptSource.Read(path, promptField: "prompt");
        Assert.That(prompts.Select(p => (p.Id, p.Text)), Is.EqualTo(new[] { ("0", "a"), ("1", "b") }));
    }

    [Test]
    public void A_broken_jsonl_line_is_named_by_file_and_line()
    {
        string path = Write("p.jsonl", "{\"question\": \"a\"}\n{\"question\": \"b\"\n");
        Assert.That(() => PromptSource.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("p.jsonl:2"));
    }

    [Test]
    public void A_missing_field_says_which_and_how_to_choose_another()
    {
        string path = Write("p.jsonl", "{\"text\": \"a\"}\n");
        Assert.That(() => PromptSource.Read(path), Throws.TypeOf<InvalidDataException>().With.Message.Contains("'question'").And.Message.Contains("--prompt-field"));
    }

    [Test]
    public void Csv_rows_of_the_wrong_width_and_unclosed_quotes_are_errors()
    {
        Assert.That(() => PromptSource.Read(Write("w.csv", "id,question\n1,a,b\n")), Throws.TypeOf<InvalidDataException>().With.Message.Contains("w.csv:2"));
        Assert.That(() => PromptSource.Read(Write("q.csv", "id,question\n1,\"open\n")), Throws.TypeOf<InvalidDataException>().With.Message.Contains("not closed"));
    }

    [Test]
    public void Duplicate_ids_are_rejected() =>
        Assert.That(() => PromptSource.Read(Write("d.jsonl", "{\"id\":1,\"question\":\"a\"}\n{\"id\":1,\"question\":\"b\"}\n")),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("appears 2 times"));
}
