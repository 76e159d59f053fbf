using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SteerEngine.Model;
using SteerEngine.Training;

namespace SteerEngine.Benchmarks;

/// <summary>
/// One BiPO training step of this engine against the PyTorch oracle's step, same model and batch:
/// <c>dotnet run -c Release --project benchmarks/SteerEngine.Benchmarks -- bipo-step [--shape tiny | --model DIR]
/// [--layer L] [--prompt-len 64] [--response-len 16] [--repeat 5] [--torch-threads N] [--blas openblas|reference]</c>.
/// The engine's step: prefix through block L, steered forward, backward to v, clipping, AdamW. PyTorch's (oracle.py
/// bipo-step): the reference trainer's padded batch forward with a steering hook, backward, clipping, AdamW, timed at
/// one thread and at every core (or at --torch-threads only), the faster counted. Both use cached reference log-probs. Reports medians and the ratio.
/// The oracle runs on Debian's OpenBLAS (its process's library path only; <c>--blas reference</c> keeps the reference
/// BLAS python3-torch links, several times slower) and reports the BLAS it mapped and its matmul rate.
/// </summary>
public static class BipoStepBenchmark
{
    public static int Run(string[] args)
    {
        string Arg(string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        string shape = Arg("--shape", "tiny");
        string modelDir = Arg("--model", "");
        int promptLen = int.Parse(Arg("--prompt-len", "64"), CultureInfo.InvariantCulture);
        int responseLen = int.Parse(Arg("--response-len", "16"), CultureInfo.InvariantCulture);
        int repeat = int.Parse(Arg("--repeat", "5"), CultureInfo.InvariantCulture);
        if (modelDir.Length == 0)
        {
            modelDir = Path.Combine(Path.GetTempPath(), $"steer-bench-{shape}");
            if (!File.Exists(Path.Combine(modelDir, "config.json"))) RandomModel.Write(shape, 1, modelDir);
        }
        using Transformer model = Transformer.Load(modelDir);
        ModelConfig c = model.Config;
        int layer = int.Parse(Arg("--layer", (c.NumLayers / 2 - 1).ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

        // Four pairs, prompts and responses of varied lengths around the requested ones.
        var rng = new Random(1);
        var sequences = new List<ScoredSequence>();
        for (int i = 0; i < 4; i++)
        {
            int p = promptLen - 3 * i, rc = responseLen - i, rr = responseLen + i;
            int[] prompt = Enumerable.Range(0, p).Select(_ => rng.Next(c.VocabSize)).ToArray();
            sequences.Add(new ScoredSequence([.. prompt, .. Enumerable.Range(0, rc).Select(_ => rng.Next(c.VocabSize))], p));
            sequences.Add(new ScoredSequence([.. prompt, .. Enumerable.Range(0, rr).Select(_ => rng.Next(c.VocabSize))], p));
        }
        float[] vector = Enumerable.Range(0, c.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.1f).ToArray();

        var slp = new SteeredLogProb(model, layer);
        SequenceBatch batch = slp.Batch(sequences);
        double[] refLogProbs = BipoObjective.ReferenceLogProbs(slp, batch, slp.Prefix(batch));
        var adam = new AdamW(c.HiddenSize);
        var grad = new float[c.HiddenSize];
        var times = new List<double>();
        for (int i = 0; i <= repeat; i++)
        {
            var clock = Stopwatch.StartNew();
            Array.Clear(grad);
            BipoObjective.Evaluate(slp, slp.Batch(sequences), slp.Prefix(batch), vector, 1, 0.1, refLogProbs, grad);
            double norm = Math.Sqrt(grad.Sum(g => (double)g * g));
            if (norm > 1) for (int j = 0; j < grad.Length; j++) grad[j] = (float)(grad[j] / (norm + 1e-6));
            adam.Update(vector, grad, 5e-4);
            if (i > 0) times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        double engine = times[times.Count / 2];
        int rows = batch.Rows, responseRows = batch.ResponseRows.Length;
        Console.WriteLine($"model {modelDir} ({c.ModelType}, H {c.HiddenSize}, {c.NumLayers} blocks, V {c.VocabSize}), layer {layer}");
        Console.WriteLine($"batch: 4 pairs, {rows} tokens, {responseRows} response tokens; {Environment.ProcessorCount} cores");
        Console.WriteLine($"engine step     {engine * 1e3,9:F1} ms (median of {repeat})");

        string request = Path.Combine(Path.GetTempPath(), $"steer-bench-bipo-{Environment.ProcessId}.json");
        File.WriteAllText(request, JsonSerializer.Serialize(new
        {
            sequences = sequences.Select(s => s.Tokens).ToArray(),
            prompt_lens = sequences.Select(s => s.PromptLength).ToArray(),
            layer, direction = 1, beta = 0.1, vector,
        }));
        int[] threadCounts = Arg("--torch-threads", "") is { Length: > 0 } t
            ? [int.Parse(t, CultureInfo.InvariantCulture)]
            : [1, Environment.ProcessorCount];
        string blas = Arg("--blas", "openblas");
        if (blas is not ("openblas" or "reference")) throw new ArgumentException($"--blas '{blas}' is not one of openblas, reference");
        string? openBlasDir = blas == "openblas" ? OpenBlasDir() : null;
        double torch = double.PositiveInfinity;
        foreach (int threads in threadCounts.Distinct())
        {
            OracleStep step = Oracle(modelDir, request, repeat, threads, openBlasDir);
            Console.WriteLine($"pytorch step    {step.Seconds * 1e3,9:F1} ms at {threads} thread(s), f32, BLAS {string.Join(" + ", step.Blas)} " +
                              $"(f32 matmul {step.MatmulGflops:F1} GFLOP/s)");
            torch = Math.Min(torch, step.Seconds);
        }
        File.Delete(request);
        Console.WriteLine($"speed-up        {torch / engine,9:F2}x over the faster PyTorch step");
        return 0;
    }

    /// <summary>One oracle bipo-step run: its median step, the BLAS libraries its process mapped, its matmul rate.</summary>
    sealed record OracleStep(double Seconds, string[] Blas, double MatmulGflops);

    /// <summary>
    /// Runs oracle.py bipo-step in its own process. With <paramref name="openBlasDir"/>, that folder leads the child's
    /// library path (nothing else's), so torch runs on OpenBLAS at <paramref name="threads"/> threads.
    /// </summary>
    static OracleStep Oracle(string modelDir, string request, int repeat, int threads, string? openBlasDir)
    {
        string oracle = FindOracle("oracle.py");
        var psi = new ProcessStartInfo("/usr/bin/python3",
            $"\"{oracle}\" bipo-step --model \"{modelDir}\" --request \"{request}\" --repeat {repeat} --threads {threads}")
        { RedirectStandardOutput = true, RedirectStandardError = true };
        if (openBlasDir is not null)
        {
            psi.Environment["LD_LIBRARY_PATH"] = openBlasDir;
            psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
            psi.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
        }
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"oracle bipo-step failed: {stderr.Result}");
        JsonElement root = JsonDocument.Parse(stdout).RootElement;
        string[] libs = root.GetProperty("blas").EnumerateArray().Select(e => e.GetString()!).ToArray();
        if (openBlasDir is not null && !libs.Any(l => l.Contains("openblas", StringComparison.OrdinalIgnoreCase)))
            throw new InvalidOperationException($"the oracle process did not load OpenBLAS from {openBlasDir}; it mapped: {string.Join(", ", libs)}");
        return new OracleStep(root.GetProperty("median_s").GetDouble(), libs.Select(Path.GetFileName).ToArray()!,
            root.GetProperty("matmul_gflops").GetDouble());
    }

    /// <summary>The folder of Debian's OpenBLAS, fetched into the cache on first use by tests/oracle/openblas.sh.</summary>
    static string OpenBlasDir()
    {
        var psi = new ProcessStartInfo("/bin/bash", $"\"{FindOracle("openblas.sh")}\"") { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        string dir = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        if (p.ExitCode != 0 || !File.Exists(Path.Combine(dir, "libblas.so.3")))
            throw new InvalidOperationException("tests/oracle/openblas.sh could not provide Debian's OpenBLAS (apt-get download libopenblas0-pthread)");
        return dir;
    }

    static string FindOracle(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "tests", "oracle", file);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"tests/oracle/{file} not found above " + AppContext.BaseDirectory);
    }
}
