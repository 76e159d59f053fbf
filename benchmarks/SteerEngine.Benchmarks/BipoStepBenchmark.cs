using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Training;

namespace SteerEngine.Benchmarks;

/// <summary>
/// One BiPO training step of this engine against the PyTorch oracle's step, same model and batch:
/// <c>dotnet run -c Release --project benchmarks/SteerEngine.Benchmarks -- bipo-step [--shape tiny | --model DIR]
/// [--layer L] [--prompt-len 64] [--response-len 16] [--repeat 5] [--kernels auto[,exact,...]] [--torch-threads N]
/// [--blas openblas|reference]</c>.
/// The engine's step, on each --kernels path (default auto: packed bf16): prefix through block L, steered forward, backward to v, clipping, AdamW. PyTorch's (oracle.py
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
            modelDir = RandomModel.Cached(ModelShapes.Get(shape), 1, Path.Combine(Path.GetTempPath(), $"steer-bench-{shape}"));
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

        SequenceBatch batch = new(sequences, c.VocabSize);
        int rows = batch.Rows, responseRows = batch.ResponseRows.Length;
        double flops = StepFlops(c, layer, rows, responseRows);
        Console.WriteLine($"model {modelDir} ({c.ModelType}, H {c.HiddenSize}, {c.NumLayers} blocks, V {c.VocabSize}), layer {layer}");
        Console.WriteLine($"batch: 4 pairs, {rows} tokens, {responseRows} response tokens; {Environment.ProcessorCount} cores; " +
                          $"{flops / 1e9:F1} GFLOP of weight products per step");
        var engine = new List<(string Path, double Seconds)>();
        foreach (string kernels in Arg("--kernels", "auto").Split(','))
        {
            using WeightProducts products = WeightProducts.Create(CpuKernels.Parse(kernels));
            double seconds = EngineStep(model, layer, sequences, vector, products, repeat);
            double peak = Roofline();
            Console.WriteLine($"engine step     {seconds * 1e3,9:F1} ms (median of {repeat}), {products.Name} products: {flops / seconds / 1e9:F1} GFLOP/s, " +
                              $"{flops / seconds / 1e9 / peak:P0} of the bf16 roofline ({peak:F0} GFLOP/s probed after it)");
            engine.Add((products.Name, seconds));
        }

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
        foreach (var (path, seconds) in engine)
            Console.WriteLine($"speed-up        {torch / seconds,9:F2}x ({path} products) over the faster PyTorch step");
        return 0;
    }

    /// <summary>
    /// The median of <paramref name="repeat"/> training steps after a warm-up step that also packs the weights: prefix
    /// through block L, steered forward, backward to v, clipping, AdamW, against reference log-probs computed once.
    /// </summary>
    static double EngineStep(Transformer model, int layer, List<ScoredSequence> sequences, float[] initial, WeightProducts products, int repeat)
    {
        var slp = new SteeredLogProb(model, layer, products, new BipoOptions().KeepBytes);
        SequenceBatch batch = slp.Batch(sequences);
        double[] refLogProbs = BipoObjective.ReferenceLogProbs(slp, batch, slp.Prefix(batch));
        float[] vector = (float[])initial.Clone();
        var adam = new AdamW(vector.Length);
        var grad = new float[vector.Length];
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
        return times[times.Count / 2];
    }

    /// <summary>
    /// Flops of one step's weight products, without recomputation (attention's score products excluded: under 1 % at
    /// these lengths). With P a block's matrix parameters: the prefix runs L+1 blocks forward, the steered pass N−L−1
    /// blocks and the head on the R response rows, the backward N−L−1 blocks' input-gradient products and the head's
    /// dz · W: 2·T·P per block pass, 2·R·V·H per head pass. What a step recomputes (blocks beyond the kept memory)
    /// counts as time, not as work, so the rate is the useful one.
    /// </summary>
    static double StepFlops(ModelConfig c, int layer, int rows, int responseRows)
    {
        double H = c.HiddenSize, p = H * (2.0 * c.QDim + 2.0 * c.KvDim) + 3.0 * H * c.IntermediateSize;
        int above = c.NumLayers - layer - 1;
        return 2.0 * rows * p * (layer + 1 + 2.0 * above) + 2 * 2.0 * responseRows * c.VocabSize * H;
    }

    /// <summary>The compute roofline of a bf16-weight product, GFLOP/s: the faster of the probed vdpbf16ps and f32 FMA peaks.</summary>
    static double Roofline() => NativeCpu.IsAvailable ? Math.Max(NativeCpu.ProbeBf16DotGflops(), NativeCpu.ProbeF32FmaGflops()) : double.NaN;

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
