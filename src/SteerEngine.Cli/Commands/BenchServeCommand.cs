using System.Diagnostics;
using System.Text;
using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Server;
using SteerEngine.Steering;
using System.CommandLine;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer bench serve</c>: the server against the engine alone, in one run on one loaded model.
/// Decode: N concurrent streaming HTTP clients (each steered with its own multiplier) against
/// <c>steer bench</c>'s batch-N steered decode steps and against a direct Generator run of the same
/// requests, each as tokens per second while all N sequences decode (from the moment the last one
/// has its first token to the moment the first one finishes). Time to first token: one streaming
/// client against a direct Generator run of the same prompt. Rounds alternate; the best counts.
/// </summary>
public static class BenchServeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "model directory" };
        var shape = new Option<string?>("--shape") { Description = "or a random model of this shape", DefaultValueFactory = _ => "llama-3.2-1b" };
        var clients = new Option<int>("--clients") { Description = "concurrent streaming clients (and the batch size compared)", DefaultValueFactory = _ => 64 };
        var promptTokens = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 16 };
        var tokens = new Option<int>("--tokens") { Description = "tokens each client generates", DefaultValueFactory = _ => 24 };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 2 };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact", DefaultValueFactory = _ => "auto" };
        var command = new Command("serve", "steer serve's throughput and time to first token against the engine alone") { model, shape, clients, promptTokens, tokens, rounds, kernels };
        command.SetAction(p => CliErrors.Run(() =>
        {
            string dir = p.GetValue(model) ?? BenchCommand.CachedModel(p.GetValue(shape)!);
            int n = Math.Max(1, p.GetValue(clients)), promptLength = Math.Max(1, p.GetValue(promptTokens)), generated = Math.Max(4, p.GetValue(tokens));
            Console.Error.WriteLine($"loading {dir} and starting the server…");
            var server = SteerServer.Create(new ServerOptions { Models = [new ModelSource(dir, "bench")], Port = 0, Kernels = p.GetValue(kernels)!, MaxBatch = n, DataDirectory = Path.Combine(Path.GetTempPath(), "steer-bench-serve") });
            server.StartAsync().GetAwaiter().GetResult();
            try { return Run(server, n, promptLength, generated, Math.Max(1, p.GetValue(rounds))).GetAwaiter().GetResult(); }
            finally { server.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        }));
        return command;
    }

    static async Task<int> Run(SteerServer server, int n, int promptLength, int generated, int rounds)
    {
        var served = server.Models[0];
        var t = (Transformer)served.Lm.Model;
        var rng = new Random(1);
        float[] vector = Enumerable.Range(0, t.Config.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.02f).ToArray();
        int layer = t.Config.NumLayers / 2;
        int[][] prompts = Enumerable.Range(0, n).Select(_ => BenchCommand.RandomTokens(rng, promptLength, t.Config.VocabSize)).ToArray();
        float Multiplier(int i) => 0.25f + i * 0.1f;
        var requests = Enumerable.Range(0, n).Select(i => new GenerationRequest(prompts[i], generated, new SamplingOptions(0.8f),
            [new SteeringAdd(layer, vector, Multiplier(i))], (ulong)i)).ToList();
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(30) };
        await http.PostAsync("/v1/steering/vectors", Json(new { name = "bench", vector }));

        var caches = Enumerable.Range(0, n).Select(_ => t.NewCache(32 + 8)).ToList();
        for (int first = 0; first < n; first += 16)
            t.Forward(caches.Skip(first).Take(16).Select(c => new ForwardSequence(c, BenchCommand.RandomTokens(rng, 32, t.Config.VocabSize))).ToList());

        double bench = 0, direct = 0, serving = 0, ttftDirect = double.MaxValue, ttftServer = double.MaxValue;
        for (int round = 0; round < rounds; round++)
        {
            Console.Error.WriteLine($"round {round + 1}/{rounds}: bench decode steps, Generator, {n} streaming clients, time to first token…");
            bench = Math.Max(bench, BenchCommand.Decode(t, caches, 32, 6, vector));
            direct = Math.Max(direct, DirectDecode(served, requests));
            serving = Math.Max(serving, await ServedDecode(http, prompts, generated, layer, Multiplier));
            ttftDirect = Math.Min(ttftDirect, DirectFirstToken(served, prompts[0]));
            ttftServer = Math.Min(ttftServer, await ServedFirstToken(http, prompts[0]));
        }
        Console.WriteLine($"model {served.Lm.Directory}: {n} clients, prompts of {promptLength} tokens, {generated} tokens each, best of {rounds} rounds");
        Console.WriteLine($"  steer bench batch-{n} steered decode   {bench,8:0.0} tok/s");
        Console.WriteLine($"  Generator, same {n} requests          {direct,8:0.0} tok/s");
        Console.WriteLine($"  steer serve, {n} streaming clients     {serving,8:0.0} tok/s   {serving / bench:P0} of bench, {serving / direct:P0} of Generator (target ≥ 85 % of bench)");
        Console.WriteLine($"  time to first token, Generator       {ttftDirect * 1000,8:0.0} ms");
        Console.WriteLine($"  time to first token, steer serve     {ttftServer * 1000,8:0.0} ms   {ttftServer / ttftDirect:0.00}× (target ≤ 1.2×)");
        return 0;
    }

    static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    /// <summary>Tokens per second while every sequence decodes: after the last first token, before the first last token.</summary>
    static double SteadyRate(IReadOnlyList<List<double>> arrivals)
    {
        double start = arrivals.Max(a => a[0]), end = arrivals.Min(a => a[^1]);
        int tokens = arrivals.Sum(a => a.Count(x => x > start && x <= end));
        return end > start ? tokens / (end - start) : 0;
    }

    static double DirectDecode(Server.Serving.ServedModel served, List<GenerationRequest> requests)
    {
        var arrivals = requests.Select(_ => new List<double>()).ToArray();
        var clock = Stopwatch.StartNew();
        new Generator(served.Lm.Model, null, new SchedulerOptions(requests.Count)).Generate(requests, (i, _) => arrivals[i].Add(clock.Elapsed.TotalSeconds));
        return SteadyRate(arrivals);
    }

    static async Task<double> ServedDecode(HttpClient http, int[][] prompts, int generated, int layer, Func<int, float> multiplier)
    {
        var arrivals = prompts.Select(_ => new List<double>()).ToArray();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(prompts.Select((prompt, i) => Task.Run(async () =>
        {
            var body = new { model = "bench", prompt, max_tokens = generated, temperature = 0.8, seed = i, stream = true, steering = new[] { new { vector = "bench", layer, multiplier = multiplier(i) } } };
            await foreach (string _ in TokenEvents(http, body)) arrivals[i].Add(clock.Elapsed.TotalSeconds);
        })));
        return SteadyRate(arrivals);
    }

    /// <summary>The SSE data lines of a streamed completion, one per token, as they arrive.</summary>
    static async IAsyncEnumerable<string> TokenEvents(HttpClient http, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = Json(body) };
        using HttpResponseMessage r = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        r.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await r.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is string line)
            if (line.StartsWith("data: {", StringComparison.Ordinal) && !line.Contains("\"finish_reason\":\"")) yield return line;
    }

    static double DirectFirstToken(Server.Serving.ServedModel served, int[] prompt)
    {
        double first = 0;
        var clock = Stopwatch.StartNew();
        new Generator(served.Lm.Model).Generate([new GenerationRequest(prompt, 1, new SamplingOptions())], (_, _) => first = clock.Elapsed.TotalSeconds);
        return first;
    }

    static async Task<double> ServedFirstToken(HttpClient http, int[] prompt)
    {
        var clock = Stopwatch.StartNew();
        await foreach (string _ in TokenEvents(http, new { model = "bench", prompt, max_tokens = 1, temperature = 0, stream = true }))
            return clock.Elapsed.TotalSeconds;
        return double.NaN;
    }
}
