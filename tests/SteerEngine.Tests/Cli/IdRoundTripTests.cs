using System.Text.Json;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>
/// A caller's id comes back with its JSON type and digits unchanged (a script joins input and output
/// on it), and the 64-bit seeds we write are also given as strings (JavaScript loses digits past 2^53).
/// </summary>
[TestFixture, NonParallelizable]
public class IdRoundTripTests
{
    static readonly string[] Ids = ["0", "\"0\"", "1.50", "-3", "\"caf\\u00e9\"", "18446744073709551617"];

    static List<JsonElement> Records(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Test]
    public void Score_returns_int_string_and_float_ids_unchanged_and_resumes_by_them()
    {
        string dir = TestModels.TempDir("ids");
        string input = Path.Combine(dir, "in.jsonl"), output = Path.Combine(dir, "out.jsonl");
        File.WriteAllLines(input, Ids.Take(4).Select(id => $"{{\"id\": {id}, \"prompt_ids\": [128000, 5], \"completion_ids\": [7, 8]}}"));
        var (code, _, err) = SteerCli.Run("score", "--model", TestModels.Get("tiny"), "--input", input, "--out", output);
        Assert.That(code, Is.EqualTo(0), err);

        File.AppendAllLines(input, Ids.Skip(4).Select(id => $"{{\"id\": {id}, \"prompt_ids\": [128000, 5], \"completion_ids\": [9]}}"));
        (code, _, err) = SteerCli.Run("score", "--model", TestModels.Get("tiny"), "--input", input, "--out", output, "--resume");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("scored 2 completions (4 already in"));

        var records = Records(output);
        Assert.That(records.Select(r => r.GetProperty("id").GetRawText()), Is.EqualTo(Ids), "each id as the input wrote it");
        Assert.That(records.Select(r => r.GetProperty("id").ValueKind),
            Is.EqualTo(new[] { JsonValueKind.Number, JsonValueKind.String, JsonValueKind.Number, JsonValueKind.Number, JsonValueKind.String, JsonValueKind.Number }));
        Assert.That(records[0].GetProperty("id").GetInt32(), Is.EqualTo(0));
        Assert.That(records[1].GetProperty("id").GetString(), Is.EqualTo("0"));
        Assert.That(records[2].GetProperty("id").GetDouble(), Is.EqualTo(1.5));
    }

    [Test]
    public void Score_names_the_line_of_an_id_that_is_not_a_string_or_number()
    {
        string dir = TestModels.TempDir("ids");
        string input = Path.Combine(dir, "in.jsonl");
        File.WriteAllLines(input, ["{\"id\": 1, \"prompt_ids\": [128000], \"completion_ids\": [7]}", "{\"id\": {\"k\": 1}, \"prompt_ids\": [128000], \"completion_ids\": [7]}"]);
        var (code, _, err) = SteerCli.Run("score", "--model", TestModels.Get("tiny"), "--input", input, "--out", Path.Combine(dir, "out.jsonl"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Contain("in.jsonl:2").And.Contain("'id' must be a string or a number").And.Not.Contain("\n"));
    }

    [Test]
    public void Generate_job_writes_prompt_ids_with_their_type_and_seeds_also_as_strings()
    {
        string dir = TestModels.TempDir("ids");
        string prompts = Path.Combine(dir, "q.jsonl"), output = Path.Combine(dir, "out.jsonl");
        File.WriteAllLines(prompts, ["{\"id\": 7, \"question\": \"One?\"}", "{\"id\": \"7b\", \"question\": \"Two?\"}", "{\"id\": 2.5, \"question\": \"Three?\"}"]);
        var (code, _, err) = SteerCli.Run("generate", "--model", TestModels.Get("tiny"), "--prompts", prompts, "--max-new-tokens", "2",
            "--seed", "18446744073709551615", "--out", output);
        Assert.That(code, Is.EqualTo(0), err);
        var records = Records(output);
        Assert.That(records.Select(r => r.GetProperty("prompt_id").GetRawText()), Is.EqualTo(new[] { "7", "\"7b\"", "2.5" }));
        foreach (JsonElement r in records)
        {
            Assert.That(r.GetProperty("seed_string").GetString(), Is.EqualTo(r.GetProperty("seed").GetUInt64().ToString()));
            Assert.That(r.GetProperty("job_seed_string").GetString(), Is.EqualTo("18446744073709551615"));
        }
        Assert.That(records.Select(r => r.GetProperty("seed").GetUInt64()).Any(s => s > 1UL << 53), Is.True, "the hashed seeds pass 2^53");
    }
}
