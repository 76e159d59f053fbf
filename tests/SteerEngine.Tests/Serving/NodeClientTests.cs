using System.Diagnostics;
using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>The npm `openai` client (tests/clients/node, pinned, installed by build.sh) against the real server: chat, steering, streaming, scoring, batch.</summary>
[TestFixture, NonParallelizable]
public class NodeClientTests
{
    [Test]
    public async Task The_npm_openai_client_chats_streams_scores_and_batches()
    {
        string dir = Repo.Path("tests", "clients", "node");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "openai"))) Assert.Ignore("tests/clients/node is not installed: run ./build.sh");
        await using var server = await TestServer.Start();
        var info = new ProcessStartInfo("node", "client.mjs") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["STEER_BASE_URL"] = new Uri(server.BaseAddress, "v1").ToString();
        using var node = Process.Start(info)!;
        Task<string> stdout = node.StandardOutput.ReadToEndAsync(), stderr = node.StandardError.ReadToEndAsync();
        if (!node.WaitForExit(TimeSpan.FromSeconds(120))) { node.Kill(); Assert.Fail("node client did not finish in 120 s"); }
        Assert.That(node.ExitCode, Is.EqualTo(0), await stderr);
        JsonNode s = JsonNode.Parse(await stdout)!;

        using var lm = LanguageModel.Load(DemoFiles.ModelDir);
        string Direct(string prompt, int tokens, SamplingOptions sampling, ulong seed, IReadOnlyList<SteeringAdd>? steering) =>
            new Generator(lm.Model, lm.Tokenizer).Generate([new GenerationRequest(lm.EncodePrompt(prompt), tokens, sampling, steering,
                SplitMix64.Hash(seed ^ SplitMix64.Hash(0UL)), lm.Tokenizer.EosTokenIds)])[0].Text!;

        Assert.That((string)s["steered"]!, Is.EqualTo(Direct("the cat", 8, new(), 0, [new SteeringAdd(2, server.Mood, 6f)])));
        Assert.That((string)s["preset"]!, Is.EqualTo((string)s["steered"]!));
        Assert.That((string)s["baseline"]!, Is.EqualTo(Direct("the cat", 8, new(), 0, null)));
        Assert.That((string)s["whole"]!, Is.EqualTo(Direct("the cat", 10, new(0.9f), 5, null)));
        Assert.That((string)s["streamed"]!, Is.EqualTo((string)s["whole"]!));
        Assert.That((int)s["topCount"]!, Is.EqualTo(20));
        Assert.That((int)s["streamUsage"]!, Is.GreaterThan(0));

        int[] prompt = lm.Tokenizer.Encode("the cat is", addBos: true);
        double sum = Scoring.ScoreCompletions(lm.Model, prompt[..1], [prompt[1..]])[0].SumLogprob;
        var lps = s["promptLogprobs"]!.AsArray();
        Assert.That(lps, Has.Count.EqualTo(prompt.Length));
        Assert.That(lps[0], Is.Null);
        Assert.That(lps.Skip(1).Sum(x => (double)x!), Is.EqualTo(sum).Within(1e-3));

        Assert.That((string)s["badRequest"]!, Is.EqualTo("400 steering[0].layer"));
        Assert.That((string)s["batchStatus"]!, Is.EqualTo("completed"));
        for (int i = 0; i < 4; i++)
            Assert.That((string)s["batch"]![$"n-{i}"]!, Is.EqualTo(Direct(i % 2 == 1 ? "my dog" : "the cat", 4, new(), 0, [new SteeringAdd(1, server.Mood, i)])), $"batch line {i}");
    }
}
