using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Server;
using SteerEngine.Server.Http;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>
/// The real server in this process on a free 127.0.0.1 port, serving the demo model as "demo" with a
/// random named vector "mood" (hidden 128), plus an HTTP client for it.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string Model = "demo";
    SteerServer _server = null!;
    public HttpClient Http { get; private set; } = null!;
    public Uri BaseAddress { get; private set; } = null!;
    public string VectorsDir { get; private set; } = null!;
    public float[] Mood { get; private set; } = null!;

    public static string MakeVectors(out float[] mood)
    {
        string dir = TestModels.TempDir("serve-vectors");
        mood = Compare.RandomVector(new Random(11), 128, 0.5f);
        VectorFile.Write(Path.Combine(dir, "mood.safetensors"), SteeringVector.Direction(mood));
        return dir;
    }

    public static async Task<TestServer> Start(Func<ServerOptions, ServerOptions>? configure = null)
    {
        var t = new TestServer();
        t.VectorsDir = MakeVectors(out float[] mood);
        t.Mood = mood;
        var options = new ServerOptions
        {
            Models = [new ModelSource(DemoFiles.ModelDir, Model)],
            Port = 0,
            VectorsDirectory = t.VectorsDir,
            Presets = ["demo-moody=mood@2x6"],
            DataDirectory = TestModels.TempDir("serve-data"),
            MaxBatch = 16,
        };
        options = configure?.Invoke(options) ?? options;
        t._server = SteerServer.Create(options);
        await t._server.StartAsync();
        t.BaseAddress = t._server.BaseAddress;
        t.Http = new HttpClient { BaseAddress = t.BaseAddress, Timeout = TimeSpan.FromSeconds(120) };
        return t;
    }

    public Task<HttpResponseMessage> Post(string path, string json) =>
        Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    public Task<HttpResponseMessage> Post(string path, object body) =>
        Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));

    /// <summary>POSTs and returns the parsed body, asserting the status.</summary>
    public async Task<JsonNode> PostOk(string path, object body)
    {
        HttpResponseMessage r = await Post(path, body);
        string text = await r.Content.ReadAsStringAsync();
        Assert.That((int)r.StatusCode, Is.EqualTo(200), text);
        return JsonNode.Parse(text)!;
    }

    public async Task<JsonNode> GetOk(string path)
    {
        HttpResponseMessage r = await Http.GetAsync(path);
        string text = await r.Content.ReadAsStringAsync();
        Assert.That((int)r.StatusCode, Is.EqualTo(200), text);
        return JsonNode.Parse(text)!;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _server.StopAsync();
        await _server.DisposeAsync();
    }
}
