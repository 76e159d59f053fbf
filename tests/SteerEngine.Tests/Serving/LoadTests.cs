using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>Bounded load and lifecycle: many clients at once, clients that leave, SIGTERM while a stream runs.</summary>
[TestFixture, NonParallelizable]
public class LoadTests
{
    static object ChatBody(int i, bool stream) => new
    {
        model = "demo",
        messages = new[] { new { role = "user", content = i % 2 == 0 ? "the cat" : "my dog" } },
        max_tokens = 3 + i % 5,
        temperature = i % 3 == 0 ? 0 : 0.7,
        seed = i,
        stream,
        steering = i % 4 == 0 ? new[] { new { vector = "mood", layer = i % 4, multiplier = (i % 9) - 4 } } : null,
    };

    /// <summary>The concatenated content of an SSE chat stream; asserts it ends with [DONE].</summary>
    static async Task<string> ReadStream(HttpResponseMessage r)
    {
        string body = await r.Content.ReadAsStringAsync();
        var data = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e["data: ".Length..]).ToList();
        Assert.That(data[^1], Is.EqualTo("[DONE]"));
        return string.Concat(data[..^1].Select(d => (string?)JsonNode.Parse(d)!["choices"]!.AsArray().FirstOrDefault()?["delta"]?["content"] ?? ""));
    }

    [Test]
    public async Task Two_hundred_fifty_six_requests_from_64_clients_all_answer_and_leave_the_server_idle()
    {
        await using var server = await TestServer.Start();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        const int clients = 64, perClient = 4;
        var answers = new string?[clients * perClient];
        await Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            for (int k = 0; k < perClient; k++)
            {
                int i = c * perClient + k;
                bool stream = i % 2 == 1;
                HttpResponseMessage r = await server.Http.PostAsync("/v1/chat/completions",
                    new StringContent(JsonSerializer.Serialize(ChatBody(i, stream)), Encoding.UTF8, "application/json"), timeout.Token);
                Assert.That((int)r.StatusCode, Is.EqualTo(200), await r.Content.ReadAsStringAsync());
                answers[i] = stream ? await ReadStream(r) : (string)JsonNode.Parse(await r.Content.ReadAsStringAsync())!["choices"]![0]!["message"]!["content"]!;
            }
        })));
        Assert.That(answers, Has.All.Not.Null);
        // Streamed and whole answers agree: request i streamed equals request i asked again whole.
        foreach (int i in new[] { 1, 3, 101, 255 })
        {
            JsonNode again = await server.PostOk("/v1/chat/completions", ChatBody(i, false));
            Assert.That(answers[i], Is.EqualTo((string)again["choices"]![0]!["message"]!["content"]!), $"request {i}");
        }
        string metrics = await server.Http.GetStringAsync("/metrics");
        Assert.That(metrics, Does.Contain("steer_running_sequences{model=\"demo\"} 0"));
        Assert.That(metrics, Does.Contain("steer_waiting_sequences{model=\"demo\"} 0"));
        Assert.That(metrics, Does.Contain($"steer_requests_total{{route=\"/v1/chat/completions\",status=\"200\"}} {clients * perClient + 4}"));
        Assert.That((int)(await server.Http.GetAsync("/health")).StatusCode, Is.EqualTo(200));
    }

    [Test]
    public async Task A_client_that_disconnects_mid_stream_frees_its_slot()
    {
        // The tiny random model with a 128k vocabulary decodes slowly enough that 3000 tokens outlast the disconnect.
        await using var server = await TestServer.Start(o => new SteerEngine.Server.ServerOptions { Models = [new(TestModels.Get("tiny"), "demo")], Port = 0, DataDirectory = o.DataDirectory });
        var body = new { model = "demo", prompt = new[] { 128000, 1, 2, 3 }, max_tokens = 3000, temperature = 0.8, stream = true };
        using (var cancel = new CancellationTokenSource())
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json") };
            HttpResponseMessage r = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            using var reader = new StreamReader(await r.Content.ReadAsStreamAsync(cancel.Token));
            await reader.ReadLineAsync(cancel.Token);
            cancel.Cancel();
            r.Dispose();
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string metrics;
        do
        {
            await Task.Delay(20);
            metrics = await server.Http.GetStringAsync("/metrics");
        } while (!metrics.Contains("steer_cancelled_sequences_total{model=\"demo\"} 1") && DateTime.UtcNow < deadline);
        Assert.That(metrics, Does.Contain("steer_cancelled_sequences_total{model=\"demo\"} 1"));
        Assert.That(metrics, Does.Contain("steer_running_sequences{model=\"demo\"} 0"));
    }

    [Test]
    public async Task Sigterm_lets_a_running_stream_finish_then_exits_cleanly()
    {
        using var serve = ServeProcess.Start("--model", DemoFiles.ModelDir, "--model-name", "demo", "--port", "0", "--data-dir", TestModels.TempDir("sigterm"));
        var body = new { model = "demo", messages = new[] { new { role = "user", content = "the cat" } }, max_tokens = 200, temperature = 0.8, seed = 3, stream = true };
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json") };
        HttpResponseMessage r = await serve.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        string? first = await reader.ReadLineAsync();
        Assert.That(first, Does.StartWith("data: "));
        var exit = Task.Run(() => serve.Terminate(TimeSpan.FromSeconds(60)));
        string rest = await reader.ReadToEndAsync();
        Assert.That(rest.TrimEnd(), Does.EndWith("data: [DONE]"));
        Assert.That(rest, Does.Contain("\"finish_reason\":"));
        Assert.That(await exit, Is.EqualTo(0));
    }
}
