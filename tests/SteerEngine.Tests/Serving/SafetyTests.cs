using System.Net;
using System.Text.Json.Nodes;
using SteerEngine.Server;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Serving;

/// <summary>Each safety rule of the server: bad input is a 4xx naming what is wrong, limits hold, and the server stays up.</summary>
[TestFixture, NonParallelizable]
public class SafetyTests
{
    TestServer _server = null!;

    [OneTimeSetUp]
    public async Task Start() => _server = await TestServer.Start(o => new ServerOptions
    {
        Models = o.Models, Port = 0, VectorsDirectory = o.VectorsDirectory, DataDirectory = o.DataDirectory, MaxBodyBytes = 8192,
    });

    [OneTimeTearDown]
    public async Task Stop() => await _server.DisposeAsync();

    static async Task<(int Status, string Message, string? Param, string? Code)> Error(HttpResponseMessage r)
    {
        JsonNode body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
        JsonNode e = body["error"]!;
        Assert.That((string?)e["type"], Is.Not.Null.And.Not.Empty);
        return ((int)r.StatusCode, (string)e["message"]!, (string?)e["param"], (string?)e["code"]);
    }

    static string Chat(string extra) =>
        $$"""{"model": "demo", "messages": [{"role": "user", "content": "the cat"}], "max_tokens": 4 {{extra}}}""";

    static string Base64(params float[] values) => Convert.ToBase64String(values.SelectMany(BitConverter.GetBytes).ToArray());

    static IEnumerable<TestCaseData> BadRequests()
    {
        TestCaseData Case(string name, string body, string message, string? param = null) => new TestCaseData(body, message, param).SetName(name);
        yield return Case("Malformed_json", """{"model": "demo", "messages": [""", "malformed JSON");
        yield return Case("NaN_literal_is_malformed_json", Chat(""", "temperature": NaN"""), "malformed JSON");
        yield return Case("Body_not_an_object", "[1, 2]", "must be a JSON object");
        yield return Case("Unknown_field", Chat(""", "frobnicate": 1"""), "'frobnicate'", "frobnicate");
        yield return Case("Unsupported_parameter_with_a_value", Chat(""", "frequency_penalty": 0.5"""), "not supported", "frequency_penalty");
        yield return Case("Tools", Chat(""", "tools": [{"type": "function", "function": {"name": "f"}}]"""), "not supported", "tools");
        yield return Case("Max_tokens_over_the_cap", Chat(""", "max_completion_tokens": 100000"""), "'max_completion_tokens' is 100000", "max_completion_tokens");
        yield return Case("Max_tokens_past_the_context", Chat(""", "max_completion_tokens": 250"""), "exceed the model's context of 256", "max_tokens");
        yield return Case("Top_logprobs_over_20", Chat(""", "logprobs": true, "top_logprobs": 21"""), "'top_logprobs' is 21", "top_logprobs");
        yield return Case("Temperature_out_of_range", Chat(""", "temperature": -1"""), "'temperature' is -1", "temperature");
        yield return Case("Steering_unknown_field", Chat(""", "steering": [{"vector": "mood", "layer": 1, "scale": 2}]"""), "'steering[0].scale'", "steering[0].scale");
        yield return Case("Steering_layer_out_of_range", Chat(""", "steering": [{"vector": "mood", "layer": 4}]"""), "'steering[0].layer' is 4; it must be in 0..3", "steering[0].layer");
        yield return Case("Steering_vector_wrong_size", Chat(""", "steering": {"vector": [1, 2, 3], "layer": 1}"""), "has 3 elements; the model's hidden size is 128", "steering[0].vector");
        yield return Case("Steering_vector_NaN", Chat($$""", "steering": {"vector_base64": "{{Base64([float.NaN, .. new float[127]])}}", "layer": 1}"""), "element 0 is NaN", "steering[0].vector");
        yield return Case("Steering_vector_not_numbers", Chat(""", "steering": {"vector": ["NaN"], "layer": 1}"""), "element 0 is a string", "steering[0].vector");
        yield return Case("Steering_multiplier_infinite", Chat(""", "steering": {"vector": "mood", "layer": 1, "multiplier": 1e300}"""), "'steering[0].multiplier'", "steering[0].multiplier");
        yield return Case("Steering_positions", Chat(""", "steering": {"vector": "mood", "layer": 1, "positions": "middle"}"""), "all, prompt, response, last_prompt, first_k, tokens", "steering[0].positions");
        yield return Case("Steering_op_unknown", Chat(""", "steering": {"vector": "mood", "layer": 1, "op": "scale"}"""), "'steering[0].op' is 'scale'; it must be one of add, add_normalized, ablate, cap, set", "steering[0].op");
        yield return Case("Steering_cap_without_bounds", Chat(""", "steering": {"vector": "mood", "layer": 1, "op": "cap"}"""), "op cap needs", "steering[0].lo");
        yield return Case("Steering_cap_lo_above_hi", Chat(""", "steering": {"vector": "mood", "layer": 1, "op": "cap", "lo": 2, "hi": 1}"""), "above 'steering[0].hi'", "steering[0].lo");
        yield return Case("Steering_set_without_value", Chat(""", "steering": {"vector": "mood", "layer": 1, "op": "set"}"""), "op set needs 'steering[0].value'", "steering[0].value");
        yield return Case("Steering_value_on_add", Chat(""", "steering": {"vector": "mood", "layer": 1, "value": 3}"""), "applies to op set only, not add", "steering[0].value");
        yield return Case("Steering_ablate_zero_vector", Chat($$""", "steering": {"vector_base64": "{{Base64(new float[128])}}", "layer": 1, "op": "ablate"}"""), "is zero, so op ablate has no direction", "steering[0].vector");
        yield return Case("Steering_first_k_without_k", Chat(""", "steering": {"vector": "mood", "layer": 1, "positions": "first_k"}"""), "positions first_k needs 'steering[0].k'", "steering[0].k");
        yield return Case("Steering_k_out_of_range", Chat(""", "steering": {"vector": "mood", "layer": 1, "positions": "first_k", "k": 0}"""), "'steering[0].k' is 0", "steering[0].k");
        yield return Case("Steering_tokens_on_all", Chat(""", "steering": {"vector": "mood", "layer": 1, "tokens": [1]}"""), "applies to positions tokens only", "steering[0].tokens");
        yield return Case("Steering_tokens_negative", Chat(""", "steering": {"vector": "mood", "layer": 1, "positions": "tokens", "tokens": [3, -1]}"""), "element 1 is not a position", "steering[0].tokens");
        yield return Case("Steering_path_is_not_a_file", Chat(""", "steering": {"vector": "../vectors/mood", "layer": 1}"""), "no steering vector named '../vectors/mood'", "steering[0].vector");
        yield return Case("Steering_absolute_path_is_not_a_file", Chat(""", "steering": {"vector": "/etc/passwd", "layer": 1}"""), "no steering vector named '/etc/passwd'", "steering[0].vector");
        yield return Case("Steering_wrong_type", Chat(""", "steering": 3"""), "'steering' must be false", "steering");
        yield return Case("Message_role", """{"model": "demo", "messages": [{"role": "tool", "content": "x"}]}""", "supported roles", "messages[0].role");
        yield return Case("Missing_model", """{"messages": [{"role": "user", "content": "x"}]}""", "'model' is required", "model");
    }

    [TestCaseSource(nameof(BadRequests))]
    public async Task Bad_chat_requests_are_400_naming_the_field(string body, string message, string? param)
    {
        var (status, text, p, _) = await Error(await _server.Post("/v1/chat/completions", body));
        Assert.That(status, Is.EqualTo(400), text);
        Assert.That(text, Does.Contain(message));
        if (param is not null) Assert.That(p, Is.EqualTo(param));
    }

    [Test]
    public async Task Bad_completion_prompts_are_400()
    {
        var (status, text, _, _) = await Error(await _server.Post("/v1/completions", """{"model": "demo", "prompt": [1, 99999]}"""));
        Assert.That(status, Is.EqualTo(400));
        Assert.That(text, Does.Contain("prompt token 99999 is outside the vocabulary"));
        (status, text, _, _) = await Error(await _server.Post("/v1/completions", """{"model": "demo", "prompt": [{"a": 1}]}"""));
        Assert.That(status, Is.EqualTo(400));
        Assert.That(text, Does.Contain("'prompt[0]'"));
    }

    [Test]
    public async Task A_body_over_the_limit_is_413()
    {
        string big = Chat($$""", "user": "{{new string('x', 20000)}}" """);
        var (status, text, _, code) = await Error(await _server.Post("/v1/chat/completions", big));
        Assert.That(status, Is.EqualTo(413), text);
        Assert.That(code, Is.EqualTo("body_too_large"));
    }

    [Test]
    public async Task Uploaded_vectors_are_named_in_memory_and_checked()
    {
        JsonNode added = await _server.PostOk("/v1/steering/vectors", new { name = "uploaded", vector_base64 = Base64(new float[128]) });
        Assert.That((int)added["hidden"]!, Is.EqualTo(128));
        JsonNode list = await _server.GetOk("/v1/steering/vectors");
        Assert.That(list["data"]!.AsArray().Select(v => (string)v!["name"]!), Is.EquivalentTo(new[] { "mood", "uploaded" }));
        var (status, text, _, _) = await Error(await _server.Post("/v1/steering/vectors", new { name = "../escape", vector = new[] { 1f } }));
        Assert.That(status, Is.EqualTo(400));
        Assert.That(text, Does.Contain("vector name '../escape'"));
    }

    [Test]
    public async Task After_every_bad_request_the_server_is_healthy_and_answers()
    {
        foreach (TestCaseData c in BadRequests()) await _server.Post("/v1/chat/completions", (string)c.Arguments[0]!);
        Assert.That((await _server.Http.GetAsync("/health")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        JsonNode ok = await _server.PostOk("/v1/chat/completions", new { model = "demo", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 3 });
        Assert.That((string)ok["choices"]![0]!["finish_reason"]!, Is.AnyOf("length", "stop"));
        string metrics = await _server.Http.GetStringAsync("/metrics");
        Assert.That(metrics, Does.Contain("steer_requests_total{route=\"/v1/chat/completions\",status=\"400\"}"));
    }
}

/// <summary>Rules that need a server configured for them: API keys, host binding, the waiting queue.</summary>
[TestFixture, NonParallelizable]
public class ServerConfigurationSafetyTests
{
    [Test]
    public void A_non_loopback_host_needs_an_api_key()
    {
        var options = new ServerOptions { Models = [new ModelSource(DemoFiles.ModelDir)], Host = "0.0.0.0" };
        Assert.That(options.Validate, Throws.ArgumentException.With.Message.Contains("--api-key"));
        Assert.That(new ServerOptions { Models = options.Models, Host = "0.0.0.0", ApiKey = "k" }.Validate, Throws.Nothing);
        Assert.That(new ServerOptions { Models = options.Models }.Host, Is.EqualTo("127.0.0.1"));
        var (code, _, err) = SteerCli.Run("serve", "--model", DemoFiles.ModelDir, "--host", "0.0.0.0");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("--host 0.0.0.0 is reachable from other machines"));
    }

    [Test]
    public async Task With_an_api_key_v1_routes_need_the_bearer_token()
    {
        await using var server = await TestServer.Start(o => new ServerOptions { Models = o.Models, Port = 0, ApiKey = "sesame", DataDirectory = o.DataDirectory });
        HttpResponseMessage denied = await server.Http.GetAsync("/v1/models");
        Assert.That((int)denied.StatusCode, Is.EqualTo(401));
        Assert.That(await denied.Content.ReadAsStringAsync(), Does.Contain("invalid_api_key"));
        var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "sesame");
        Assert.That((int)(await server.Http.SendAsync(request)).StatusCode, Is.EqualTo(200));
        Assert.That((int)(await server.Http.GetAsync("/health")).StatusCode, Is.EqualTo(200));
    }

    [Test]
    public async Task A_full_waiting_queue_answers_429_with_retry_after_and_loses_nothing_else()
    {
        await using var server = await TestServer.Start(o => new ServerOptions { Models = o.Models, Port = 0, MaxBatch = 1, MaxWaiting = 1, DataDirectory = o.DataDirectory });
        var body = new { model = "demo", messages = new[] { new { role = "user", content = "the cat" } }, max_tokens = 60, temperature = 0 };
        HttpResponseMessage[] responses = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => server.Post("/v1/chat/completions", body)));
        var busy = responses.Where(r => (int)r.StatusCode == 429).ToList();
        Assert.That(busy, Is.Not.Empty);
        Assert.That(responses.All(r => (int)r.StatusCode is 200 or 429));
        foreach (var r in busy)
        {
            Assert.That(r.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(1)));
            Assert.That(await r.Content.ReadAsStringAsync(), Does.Contain("rate_limit_error"));
        }
        JsonNode after = await server.PostOk("/v1/chat/completions", body);
        Assert.That((int)after["usage"]!["completion_tokens"]!, Is.GreaterThan(0));
    }
}
