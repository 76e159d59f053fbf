using System.Text.Json.Nodes;
using SteerEngine.Experiments.Persona;
using SteerEngine.Tests.Judging;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Persona;

/// <summary>`steer persona new` against a local server speaking the OpenAI and Anthropic wire formats: malformed replies are retried, and files come only from valid JSON.</summary>
[NonParallelizable]
public class PersonaNewTests
{
    public static string ValidJson(int questions = 40, string eval = "Rate {question} / {answer}: 0-100 or REFUSAL.") => new JsonObject
    {
        ["instruction"] = new JsonArray(Enumerable.Range(0, 5).Select(i => (JsonNode)new JsonObject { ["pos"] = $"be cheerful {i}", ["neg"] = $"be gloomy {i}" }).ToArray()),
        ["questions"] = new JsonArray(Enumerable.Range(0, questions).Select(i => (JsonNode)JsonValue.Create($"question {i}?")).ToArray()),
        ["eval_prompt"] = eval,
    }.ToJsonString();

    /// <summary>The trait prompt gets prose, the first correction a JSON object one question short, the correction of that a valid object inside a fence.</summary>
    static FakeReply Script(string prompt, int asked) =>
        prompt.StartsWith("Your reply could not be used", StringComparison.Ordinal)
            ? prompt.Contains("39 entries") ? new FakeReply.Text("```json\n" + ValidJson() + "\n```") : new FakeReply.Text(ValidJson(questions: 39))
            : new FakeReply.Text("Sure, here are some ideas for the trait.");

    [TestCase("openai")]
    [TestCase("anthropic")]
    [CancelAfter(60_000)]
    public void Malformed_replies_are_retried_and_the_valid_one_is_split_20_20(string provider)
    {
        string dir = Directory.CreateTempSubdirectory("steer-persona-new-").FullName;
        using var server = new FakeJudgeServer(Script);
        Environment.SetEnvironmentVariable("STEER_TEST_KEY", "k");
        string url = provider == "openai" ? server.BaseUrl : $"http://127.0.0.1:{server.Port}";
        var (code, output, err) = SteerCli.Run("persona", "new", "--trait", "cheerful", "--description", "upbeat and sunny", "--generator", $"{provider}:fake-model",
            "--generator-base-url", url, "--generator-api-key-env", "STEER_TEST_KEY", "--attempts", "3", "--dir", dir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("attempt 1 of 3: malformed reply (the reply holds no JSON object)"));
        Assert.That(err, Does.Contain("attempt 2 of 3: malformed reply ('questions' has 39 entries, expected 40)"));
        Assert.That(server.Requests, Is.EqualTo(3));
        var extract = TraitDefinition.Load(TraitDefinition.ExtractPath(dir, "cheerful"));
        var eval = TraitDefinition.Load(TraitDefinition.EvalPath(dir, "cheerful"));
        Assert.That(extract.Questions, Is.EqualTo(Enumerable.Range(0, 20).Select(i => $"question {i}?")));
        Assert.That(eval.Questions, Is.EqualTo(Enumerable.Range(20, 20).Select(i => $"question {i}?")));
        Assert.That(extract.Instructions, Has.Count.EqualTo(5));
        Assert.That(extract.Instructions[3], Is.EqualTo(new InstructionPair("be cheerful 3", "be gloomy 3")));
        Assert.That(eval.EvalPrompt, Is.EqualTo(extract.EvalPrompt));
        Assert.That(output, Does.Contain("wrote"));
        Directory.Delete(dir, true);
    }

    [TestCase("openai")]
    [TestCase("anthropic")]
    [CancelAfter(60_000)]
    public void Only_malformed_replies_end_in_one_clear_error_and_no_files(string provider)
    {
        string dir = Directory.CreateTempSubdirectory("steer-persona-new-").FullName;
        using var server = new FakeJudgeServer((prompt, _) => new FakeReply.Text(ValidJson(eval: "Rate {answer} from 0 to 100.")));
        Environment.SetEnvironmentVariable("STEER_TEST_KEY", "k");
        string url = provider == "openai" ? server.BaseUrl : $"http://127.0.0.1:{server.Port}";
        var (code, _, err) = SteerCli.Run("persona", "new", "--trait", "cheerful", "--description", "upbeat", "--generator", $"{provider}:fake-model",
            "--generator-base-url", url, "--generator-api-key-env", "STEER_TEST_KEY", "--attempts", "2", "--dir", dir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim().Split('\n').Last(), Is.EqualTo($"error: generator {provider}:fake-model gave no valid trait JSON in 2 attempts; the last problem: 'eval_prompt' lacks the placeholder {{question}}"));
        Assert.That(server.Requests, Is.EqualTo(2));
        Assert.That(Directory.EnumerateFileSystemEntries(dir), Is.Empty);
        Directory.Delete(dir, true);
    }

    [TestCase("{\"instruction\": [], \"questions\": [], \"eval_prompt\": \"{question}{answer}\"}", "'instruction' has 0 pairs, expected 5")]
    [TestCase("{\"instruction\": [{\"pos\": \"a\"}], \"questions\": [], \"eval_prompt\": \"x\"}", "instruction[0] has no non-empty string 'neg'")]
    [TestCase("{\"questions\": []}", "no array field 'instruction'")]
    [TestCase("{\"instruction\": [}", "the reply is not valid JSON")]
    public void Parse_names_the_first_wrong_field(string reply, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => TraitDefinition.Parse(reply));
        Assert.That(e!.Message, Does.StartWith(message));
    }

    [Test]
    public void Repeated_questions_are_rejected()
    {
        string json = ValidJson().Replace("question 7?", "question 6?");
        Assert.That(Assert.Throws<InvalidDataException>(() => TraitDefinition.Parse(json))!.Message, Is.EqualTo("'questions' repeats a question"));
    }
}
