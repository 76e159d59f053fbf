using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Model;

namespace SteerEngine.Tests.Support;

/// <summary>Runs tests/oracle/oracle.py (PyTorch under Debian's /usr/bin/python3) and reads what it wrote.</summary>
public static class TorchOracle
{
    const string Python = "/usr/bin/python3";

    public static void RequireTorch()
    {
        if (!File.Exists(Python) || Run(Python, "-c \"import torch\"").ExitCode != 0)
            Assert.Ignore("PyTorch oracle unavailable: /usr/bin/python3 with python3-torch is needed (./build.sh installs it)");
    }

    /// <summary>One hook of the oracle's forward; op and its fields as in tests/oracle/model.py (null fields are not sent).</summary>
    public sealed record SteeringEntry(int row, int layer, float multiplier, string positions, float[] vector,
        string op = "add", float? lo = null, float? hi = null, float? value = null, int? k = null, int[]? tokens = null,
        string? hook = null, int? head = null);

    /// <summary>Runs the oracle's forward on each sequence alone; returns its output file (tensors logits.i, hidden.i).</summary>
    public static SafetensorsFile Forward(string modelDir, int[][] sequences, int[]? promptLens = null,
        bool hiddenStates = false, IEnumerable<SteeringEntry>? steering = null, string dtype = "float32")
    {
        RequireTorch();
        string dir = TestModels.TempDir("oracle");
        string request = System.IO.Path.Combine(dir, "request.json");
        string output = System.IO.Path.Combine(dir, "out.safetensors");
        File.WriteAllText(request, JsonSerializer.Serialize(new
        {
            sequences,
            prompt_lens = promptLens ?? sequences.Select(s => s.Length).ToArray(),
            hidden_states = hiddenStates,
            steering = (steering ?? []).ToArray(),
        }, new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));
        var result = Run(Python, $"\"{Repo.Path("tests", "oracle", "oracle.py")}\" forward --model \"{modelDir}\" --request \"{request}\" --out \"{output}\" --dtype {dtype}");
        if (result.ExitCode != 0) Assert.Fail($"oracle failed ({result.ExitCode}): {result.Stderr}");
        return SafetensorsFile.Open(output);
    }

    public static unsafe float[] Tensor(SafetensorsFile file, string name)
    {
        TensorInfo t = file.Tensors[name];
        Assert.That(t.DType, Is.EqualTo(DType.F32));
        return new ReadOnlySpan<float>(file.DataPointer(t), (int)t.ElementCount).ToArray();
    }

    static (int ExitCode, string Stdout, string Stderr) Run(string exe, string args)
    {
        var psi = new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }
}
