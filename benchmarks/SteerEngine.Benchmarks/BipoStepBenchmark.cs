using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SteerEngine.Model;
using SteerEngine.Training;

namespace SteerEngine.Benchmarks;

/// <summary>
/// One BiPO training step of this engine against the PyTorch oracle's step, same model and batch:
/// <c>dotnet run -c Release --project benchmarks/SteerEngine.Benchmarks -- bipo-step [--shape tiny | --model DIR]
/// [--layer L] [--prompt-len 64] [--response-len 16] [--repeat 5] [--torch-threads N]</c>.
/// The engine's step: prefix through block L, steered forward, backward to v, clipping, AdamW. PyTorch's (oracle.py
/// bipo-step): the reference trainer's padded batch forward with a steering hook, backward, clipping, AdamW, timed at
/// one thread and at every core (or at --torch-threads only), the faster counted. Both use cached reference log-probs. Reports medians and the ratio.
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
        double torch = double.PositiveInfinity;
        foreach (int threads in threadCounts.Distinct())
        {
            double seconds = Oracle(modelDir, request, repeat, threads);
            Console.WriteLine($"pytorch step    {seconds * 1e3,9:F1} ms at {threads} thread(s)");
            torch = Math.Min(torch, seconds);
        }
        File.Delete(request);
        Console.WriteLine($"speed-up        {torch / engine,9:F2}x over the faster PyTorch step");
        return 0;
    }

    static double Oracle(string modelDir, string request, int repeat, int threads)
    {
        string oracle = FindOracle();
        var psi = new ProcessStartInfo("/usr/bin/python3",
            $"\"{oracle}\" bipo-step --model \"{modelDir}\" --request \"{request}\" --repeat {repeat} --threads {threads}")
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"oracle bipo-step failed: {stderr.Result}");
        return JsonDocument.Parse(stdout).RootElement.GetProperty("median_s").GetDouble();
    }

    static string FindOracle()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "tests", "oracle", "oracle.py");
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException("tests/oracle/oracle.py not found above " + AppContext.BaseDirectory);
    }
}
