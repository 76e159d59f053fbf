using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Training;

/// <summary>Runs <c>oracle.py bipo-grad</c>: the BiPO loss and its gradient by torch autograd (and float64 finite differences).</summary>
public static class BipoOracle
{
    public sealed record Result(float Loss, float[] Grad, float[] LogProbs, float[] RefLogProbs,
        float[][] FdDirections, float[] Fd);

    public static Result Run(string modelDir, int[][] sequences, int[] promptLens, int layer, int direction, double beta,
        float[] vector, double[]? refLogProbs, string dtype = "float32", int fdDirections = 0)
    {
        TorchOracle.RequireTorch();
        string dir = TestModels.TempDir("bipo-oracle");
        string request = Path.Combine(dir, "request.json"), output = Path.Combine(dir, "out.safetensors");
        var req = new Dictionary<string, object>
        {
            ["sequences"] = sequences, ["prompt_lens"] = promptLens, ["layer"] = layer,
            ["direction"] = direction, ["beta"] = beta, ["vector"] = vector,
        };
        if (refLogProbs is not null) req["ref_logps"] = refLogProbs;
        File.WriteAllText(request, JsonSerializer.Serialize(req));
        var psi = new ProcessStartInfo("/usr/bin/python3",
            $"\"{Repo.Path("tests", "oracle", "oracle.py")}\" bipo-grad --model \"{modelDir}\" --request \"{request}\" --out \"{output}\" --dtype {dtype} --fd {fdDirections}")
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using (var p = Process.Start(psi)!)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) Assert.Fail($"oracle bipo-grad failed ({p.ExitCode}): {stderr}");
        }
        using var f = SafetensorsFile.Open(output);
        float[] dirs = fdDirections > 0 ? TorchOracle.Tensor(f, "fd_directions") : [];
        int H = vector.Length;
        return new Result(TorchOracle.Tensor(f, "loss")[0], TorchOracle.Tensor(f, "grad"), TorchOracle.Tensor(f, "logps"),
            TorchOracle.Tensor(f, "ref_logps"),
            Enumerable.Range(0, fdDirections).Select(k => dirs.AsSpan(k * H, H).ToArray()).ToArray(),
            fdDirections > 0 ? TorchOracle.Tensor(f, "fd") : []);
    }
}
