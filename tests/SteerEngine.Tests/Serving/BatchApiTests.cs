using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>The Batch API through a real `steer serve` process that is killed mid-batch, and `steer run-batch` on the same file.</summary>
[TestFixture, NonParallelizable]
public class BatchApiTests
{
    /// <summary>Chat lines: greedy, sampled with and without a seed, steered at several multipliers; two lines fail (unknown vector).</summary>
    static string MakeInput(int count)
    {
        var lines = new StringBuilder();
        string[] prompts = ["the cat", "my dog", "a river", "the child"];
        for (int i = 0; i < count; i++)
        {
            var body = new JsonObject
            {
                ["model"] = "demo",
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompts[i % 4] }),
                ["max_tokens"] = 3 + i % 5,
                ["temperature"] = i % 3 == 0 ? 0 : 0.8,
            };
            if (i % 3 == 1) body["seed"] = i;
            if (i % 2 == 0) body["steering"] = new JsonArray(new JsonObject { ["vector"] = i == 10 || i == 20 ? "missing" : "mood", ["layer"] = i % 4, ["multiplier"] = i % 7 - 3 });
            var line = new JsonObject { ["custom_id"] = $"req-{i}", ["method"] = "POST", ["url"] = "/v1/chat/completions", ["body"] = body };
            lines.Append(line.ToJsonString()).Append('\n');
        }
        return lines.ToString();
    }

    /// <summary>custom_id → (status, text, finish reason, tokens) from output lines.</summary>
    static Dictionary<string, string> Outcomes(IEnumerable<string> lines)
    {
        var outcomes = new Dictionary<string, string>();
        foreach (string line in lines.Where(l => l.Length > 0))
        {
            JsonNode n = JsonNode.Parse(line)!;
            JsonNode response = n["response"]!;
            int status = (int)response["status_code"]!;
            JsonNode body = response["body"]!;
            string outcome = status == 200
                ? $"200|{body["choices"]![0]!["message"]!["content"]}|{body["choices"]![0]!["finish_reason"]}|{body["usage"]!["completion_tokens"]}"
                : $"{status}|{body["error"]!["message"]}";
            string id = (string)n["custom_id"]!;
            Assert.That(outcomes.TryAdd(id, outcome), Is.True, $"custom_id {id} appears twice");
        }
        return outcomes;
    }

    static async Task<string> Upload(HttpClient http, string content)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("batch"), "purpose");
        var file = new ByteArrayContent(Encoding.UTF8.GetBytes(content));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/jsonl");
        form.Add(file, "file", "requests.jsonl");
        HttpResponseMessage r = await http.PostAsync("/v1/files", form);
        string text = await r.Content.ReadAsStringAsync();
        Assert.That((int)r.StatusCode, Is.EqualTo(200), text);
        return (string)JsonNode.Parse(text)!["id"]!;
    }

    static async Task<JsonNode> Json(HttpResponseMessage r)
    {
        string text = await r.Content.ReadAsStringAsync();
        Assert.That((int)r.StatusCode, Is.EqualTo(200), text);
        return JsonNode.Parse(text)!;
    }

    [Test]
    public async Task A_batch_killed_mid_run_resumes_to_every_line_once_equal_to_run_batch()
    {
        const int count = 520;
        string vectors = TestServer.MakeVectors(out _);
        string dataDir = TestModels.TempDir("batch-kill");
        string input = MakeInput(count);
        string[] serve = ["--model", DemoFiles.ModelDir, "--model-name", "demo", "--port", "0", "--data-dir", dataDir, "--vectors", vectors, "--max-batch", "8"];

        string batchId;
        int linesAtKill;
        using (var first = ServeProcess.Start(serve))
        {
            string fileId = await Upload(first.Http, input);
            JsonNode batch = await Json(await first.Http.PostAsync("/v1/batches",
                new StringContent(JsonSerializer.Serialize(new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h" }), Encoding.UTF8, "application/json")));
            batchId = (string)batch["id"]!;
            Assert.That((string)batch["status"]!, Is.EqualTo("in_progress"));
            string output = Path.Combine(dataDir, "batches", batchId, "output.jsonl");
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while ((!File.Exists(output) || File.ReadAllLines(output).Length < 60) && DateTime.UtcNow < deadline) await Task.Delay(10);
            first.KillHard();
            linesAtKill = File.ReadAllLines(output).Length;
        }
        Assert.That(linesAtKill, Is.InRange(60, count - 50), "the kill should land mid-batch");

        JsonNode done;
        using (var second = ServeProcess.Start(serve))
        {
            var deadline = DateTime.UtcNow.AddSeconds(180);
            do
            {
                await Task.Delay(100);
                done = await Json(await second.Http.GetAsync($"/v1/batches/{batchId}"));
            } while ((string)done["status"]! != "completed" && DateTime.UtcNow < deadline);
            Assert.That((string)done["status"]!, Is.EqualTo("completed"));
            Assert.That((int)done["request_counts"]!["total"]!, Is.EqualTo(count));
            Assert.That((int)done["request_counts"]!["failed"]!, Is.EqualTo(2));
            string outputText = await second.Http.GetStringAsync($"/v1/files/{done["output_file_id"]}/content");
            string errorText = await second.Http.GetStringAsync($"/v1/files/{done["error_file_id"]}/content");
            var served = Outcomes(outputText.Split('\n').Concat(errorText.Split('\n')));
            Assert.That(served.Keys, Is.EquivalentTo(Enumerable.Range(0, count).Select(i => $"req-{i}")));
            Assert.That(served["req-10"], Does.StartWith("400|").And.Contain("no steering vector named 'missing'"));
            JsonNode list = await Json(await second.Http.GetAsync("/v1/batches"));
            Assert.That(list["data"]!.AsArray().Select(b => (string)b!["id"]!), Does.Contain(batchId));

            string inputPath = Path.Combine(dataDir, "input.jsonl"), offline = Path.Combine(dataDir, "offline.jsonl");
            File.WriteAllText(inputPath, input);
            var (code, _, err) = SteerCli.Run("run-batch", "-i", inputPath, "-o", offline, "--model", DemoFiles.ModelDir, "--model-name", "demo", "--vectors", vectors);
            Assert.That(code, Is.EqualTo(1), err);   // two lines fail
            var local = Outcomes(File.ReadAllLines(offline));
            Assert.That(local, Is.EquivalentTo(served));
        }
    }

    [Test]
    public async Task Run_batch_resumes_a_torn_output_file_without_redoing_lines()
    {
        string vectors = TestServer.MakeVectors(out _);
        string dir = TestModels.TempDir("run-batch");
        string input = Path.Combine(dir, "in.jsonl"), output = Path.Combine(dir, "out.jsonl");
        File.WriteAllText(input, MakeInput(12).Replace("\"missing\"", "\"mood\""));
        string[] args = ["run-batch", "-i", input, "-o", output, "--model", DemoFiles.ModelDir, "--model-name", "demo", "--vectors", vectors];
        Assert.That(SteerCli.Run(args).Code, Is.EqualTo(0));
        string[] whole = File.ReadAllLines(output);
        // Keep five lines and half of the sixth, as a process killed mid-write would leave it.
        File.WriteAllText(output, string.Join("\n", whole[..5]) + "\n" + whole[5][..(whole[5].Length / 2)]);
        var (code, stdout, err) = SteerCli.Run(args);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(stdout, Does.Contain("12 of 12 requests done"));
        Assert.That(File.ReadAllLines(output)[..5], Is.EqualTo(whole[..5]));
        Assert.That(Outcomes(File.ReadAllLines(output)), Is.EquivalentTo(Outcomes(whole)));
    }

    [Test]
    public async Task Bad_batch_input_is_refused_at_creation_naming_the_line()
    {
        await using var server = await TestServer.Start();
        string fileId = await Upload(server.Http, MakeInput(3) + "{\"custom_id\": \"x\", \"method\": \"GET\", \"url\": \"/v1/chat/completions\", \"body\": {}}\n");
        HttpResponseMessage r = await server.Post("/v1/batches", new { input_file_id = fileId, endpoint = "/v1/chat/completions", completion_window = "24h" });
        string text = await r.Content.ReadAsStringAsync();
        Assert.That((int)r.StatusCode, Is.EqualTo(400), text);
        Assert.That(text, Does.Contain("line 4: method 'GET'"));
        r = await server.Post("/v1/batches", new { input_file_id = "file-../../etc", endpoint = "/v1/chat/completions" });
        Assert.That((int)r.StatusCode, Is.EqualTo(400));
        Assert.That((int)(await server.Http.GetAsync("/v1/files/file-nothere")).StatusCode, Is.EqualTo(404));
        var (code, _, err) = SteerCli.Run("run-batch", "-i", "/nonexistent/in.jsonl", "-o", "/tmp/x.jsonl", "--model", DemoFiles.ModelDir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("/nonexistent/in.jsonl: batch input file not found"));
    }
}
