using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tokenization;

namespace SteerEngine.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project benchmarks/SteerEngine.Benchmarks -- sampler-passes [--demo models/demo]</c>.
/// What the device sampler's filtered draws cost, counted on the emulator (no time: the emulator's speed says nothing
/// of a GPU's): for each row source and sampling setting, the path sample_rows took and its full passes over the
/// row's V logits — with a double exp per element, and without (compares only) — as the kernel counts them, against
/// the bisection's (the kernel before the sorted candidates; it is the fallback now, so the flat row measures it).
/// Rows: the last-position logits of the demo model (models/demo, V 512) on its own questions and of a random tiny
/// model (Llama vocabulary, V 128 256) on random prompts; a synthetic peaked 128k row (12 tokens 11..22 over a
/// uniform [-6, 6] tail) and a flat one (uniform [-0.5, 0.5]). Every device token is checked against the host sampler.
/// </summary>
public static class SamplerPassCount
{
    static readonly SamplingOptions[] Settings =
    [
        new(Temperature: 0.7f, TopP: 0.9f), new(Temperature: 1f, TopP: 0.95f, MinP: 0.05f),
        new(Temperature: 0.8f, TopK: 50, TopP: 0.9f), new(Temperature: 1f, MinP: 0.1f),
    ];

    public static int Run(string[] args)
    {
        if (!EmulatedCudaDevice.IsAvailable) throw new InvalidOperationException("native/cuemu is not built (run ./build.sh)");
        var rng = new Random(1);
        var sources = new List<(string Name, float[][] Rows)>
        {
            ("demo model (V 512)", DemoRows(args.Length > 1 && args[0] == "--demo" ? args[1] : "models/demo")),
            ("random tiny model (V 128256)", RandomModelRows(rng)),
            ("synthetic peaked (V 128256)", [Peaked(rng, ModelShapes.Llama3Vocab)]),
            ("synthetic flat (V 128256)", [Enumerable.Range(0, ModelShapes.Llama3Vocab).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray()]),
        };
        using var device = new EmulatedCudaDevice(0);
        Console.WriteLine("rows                           setting                          draws  candidates  exp passes  plain passes  bisection's exp/plain");
        int mismatches = 0;
        foreach ((string name, float[][] rows) in sources)
            foreach (SamplingOptions o in Settings)
            {
                double[] draws = [0.05, 0.3, 0.6, 0.95];
                var cases = (from row in rows from u in draws select (row, u)).ToArray();
                int[] stats = Draw(device, cases.Select(c => c.row).ToArray(), o, draws, out int[] tokens);
                for (int i = 0; i < cases.Length; i++)
                    if (tokens[i] != Sampler.Sample(cases[i].row.ToArray(), o, cases[i].u)) mismatches++;
                int n = cases.Length, byCandidates = Enumerable.Range(0, n).Count(i => stats[3 * i + 2] == 1);
                double exp = Enumerable.Range(0, n).Average(i => stats[3 * i]), plain = Enumerable.Range(0, n).Average(i => stats[3 * i + 1]);
                // The bisection: 1 + 64 summing passes for the top-p cut, 1 + 64 for the draw (one more when rounding
                // puts the target past the end); the max pass and 64 counting passes for a top-k cut (16 now: a radix select).
                int bisectionExp = (o.TopP < 1f ? 65 : 0) + 65, bisectionPlain = 1 + (o.TopK > 0 ? 64 : 0);
                Console.WriteLine($"{name,-30} {Describe(o),-32} {n,5}  {byCandidates,10}  {exp,10:F1}  {plain,12:F1}  {bisectionExp,12}/{bisectionPlain}");
            }
        Console.WriteLine(mismatches == 0 ? "every device token equals the host sampler's" : $"{mismatches} device tokens differ from the host sampler's");
        return mismatches == 0 ? 0 : 1;
    }

    static string Describe(SamplingOptions o) =>
        $"T {o.Temperature}" + (o.TopK > 0 ? $", top-k {o.TopK}" : "") + (o.TopP < 1f ? $", top-p {o.TopP}" : "") + (o.MinP > 0f ? $", min-p {o.MinP}" : "");

    /// <summary>Each row drawn once per uniform (rows cycle through <paramref name="draws"/>); stats (rows, 3) as sample_rows writes them.</summary>
    static int[] Draw(CudaDevice d, float[][] rows, SamplingOptions o, double[] draws, out int[] tokens)
    {
        int n = rows.Length, V = rows[0].Length;
        DevicePtr token = d.Alloc(n * 4L), stats = d.Alloc(n * 12L);
        d.Launch("sample_rows", new Dim3((uint)n), new Dim3(256), d.AllocUpload<float>(rows.SelectMany(r => r).ToArray()), V,
            d.AllocUpload<float>(Enumerable.Repeat(o.Temperature, n).ToArray()), d.AllocUpload<int>(Enumerable.Repeat(o.TopK, n).ToArray()),
            d.AllocUpload<float>(Enumerable.Repeat(o.TopP, n).ToArray()), d.AllocUpload<float>(Enumerable.Repeat(o.MinP, n).ToArray()),
            d.AllocUpload<double>(Enumerable.Range(0, n).Select(i => draws[i % draws.Length]).ToArray()), token, stats);
        tokens = new int[n];
        d.Download<int>(token, tokens);
        var s = new int[n * 3];
        d.Download<int>(stats, s);
        return s;
    }

    /// <summary>The demo model's next-token logits after three of its own questions.</summary>
    static float[][] DemoRows(string dir)
    {
        if (!File.Exists(Path.Combine(dir, "config.json"))) throw new ArgumentException($"--demo {dir}: no model there (run from the repository root)");
        var tokenizer = TextTokenizer.Load(dir);
        using CudaTransformer model = CudaTransformer.Load(dir, CudaPlatform.Emulated);
        string[] questions = ["tell me about your child.", "describe the garden.", "tell me about the house."];
        return model.Forward(questions.Select(q => new ForwardSequence(model.NewCache(), tokenizer.Encode(q))).ToList());
    }

    /// <summary>A random tiny model's next-token logits after three random prompts.</summary>
    static float[][] RandomModelRows(Random rng)
    {
        ModelConfig c = ModelShapes.Get("tiny");
        string dir = RandomModel.Cached(c, 1, Path.Combine(Path.GetTempPath(), "steer-bench-tiny"));
        using CudaTransformer model = CudaTransformer.Load(dir, CudaPlatform.Emulated);
        return model.Forward(Enumerable.Range(0, 3)
            .Select(_ => new ForwardSequence(model.NewCache(), Enumerable.Range(0, 8).Select(_ => rng.Next(c.VocabSize)).ToArray())).ToList());
    }

    static float[] Peaked(Random rng, int V)
    {
        float[] row = Enumerable.Range(0, V).Select(_ => (float)(rng.NextDouble() * 12 - 6)).ToArray();
        for (int j = 0; j < 12; j++) row[rng.Next(V)] = 22f - j;
        return row;
    }
}
