using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer bench</c>: measures this machine's limits (read bandwidth, f32 FMA and bf16 dot peaks)
/// and, in the same run, prefill and decode throughput, each as a fraction of its roofline.
/// Ratios hold on a shared machine where absolute figures drift.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "model directory" };
        var shape = new Option<string?>("--shape") { Description = $"or a random model of this shape, generated once into the cache: {string.Join(", ", ModelShapes.Names)}" };
        var kernels = new Option<string>("--kernels") { Description = "auto | native | managed | exact", DefaultValueFactory = _ => "auto" };
        var prefill = new Option<int>("--prefill") { Description = "prompt length of the prefill test", DefaultValueFactory = _ => 512 };
        var batches = new Option<string>("--batches") { Description = "decode batch sizes", DefaultValueFactory = _ => "1,4,16,64" };
        var context = new Option<int>("--context") { Description = "cached tokens per sequence before decoding", DefaultValueFactory = _ => 32 };
        var steps = new Option<int>("--steps") { Description = "timed decode steps per measurement", DefaultValueFactory = _ => 6 };
        var rounds = new Option<int>("--rounds") { Description = "measurements of each test, alternating steered and unsteered; the best counts", DefaultValueFactory = _ => 3 };
        var profile = new Option<bool>("--profile") { Description = "also print the time per op of prefill and of the largest steered decode batch" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var sweep = new Option<bool>("--sweep") { Description = "instead: sweep jobs' generated tok/s against batch-64 steered decode, and sampling's share of a step" };
        var sweepTokens = new Option<int>("--sweep-tokens") { Description = "new tokens per row of the sweep jobs", DefaultValueFactory = _ => 64 };
        var command = new Command("bench", "throughput as fractions of this machine's measured limits") { model, shape, kernels, prefill, batches, context, steps, rounds, profile, json, sweep, sweepTokens };
        command.Subcommands.Add(BenchServeCommand.Create());
        command.SetAction(p => CliErrors.Run(() =>
        {
            if (!NativeCpu.IsAvailable) throw new FileNotFoundException("steer bench measures the machine with libsteer_cpu's probes: run ./build.sh");
            string dir = p.GetValue(model) ?? (p.GetValue(shape) is string s ? CachedModel(s) : throw new ArgumentException("give --model DIR or --shape NAME"));
            int[] batchSizes = Generation.Jobs.SweepValues.Layers(p.GetValue(batches)!);
            var log = p.GetValue(json) ? TextWriter.Null : Console.Error;

            if (p.GetValue(sweep))
            {
                log.WriteLine($"loading {dir}…");
                using var sweepModel = Transformer.Load(dir, CpuKernels.Parse(p.GetValue(kernels)!));
                return BenchSweep.Run(sweepModel, dir, p.GetValue(sweepTokens), p.GetValue(rounds), p.GetValue(json), log);
            }
            log.WriteLine("measuring the machine…");
            MachineLimits m = Probe();
            log.WriteLine($"loading {dir}…");
            using var t = Transformer.Load(dir, CpuKernels.Parse(p.GetValue(kernels)!));
            var roof = new Roofline(t.Config);
            var rng = new Random(1);

            log.WriteLine($"prefill {p.GetValue(prefill)} tokens…");
            int nRounds = Math.Max(1, p.GetValue(rounds));
            double prefillTokS = Prefill(t, p.GetValue(prefill), rng, nRounds);
            double prefillRoof = roof.PrefillTokS(m, p.GetValue(prefill));

            int ctx = p.GetValue(context), maxBatch = batchSizes.Max();
            log.WriteLine($"decode: prefilling {maxBatch} sequences of {ctx} tokens…");
            var caches = Enumerable.Range(0, maxBatch).Select(_ => t.NewCache(ctx + p.GetValue(steps) + 2)).ToList();
            for (int first = 0; first < maxBatch; first += 16)
                t.Forward(caches.Skip(first).Take(16).Select(c => new ForwardSequence(c, RandomTokens(rng, ctx, t.Config.VocabSize))).ToList());
            float[] vector = Enumerable.Range(0, t.Config.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            var decode = new List<DecodeResult>();
            foreach (int b in batchSizes)
            {
                // Alternating rounds, best of each: a burst of other work on the machine hits both alike.
                // The host's read bandwidth drifts with other tenants' traffic (between about 33 and
                // 51 GB/s within minutes on the development VM), so each round is set against the
                // bandwidth probed just before and after it, the higher of the two; the round nearest
                // its roofline counts.
                log.WriteLine($"decode batch {b}, unsteered and steered, {nRounds} rounds…");
                var best = new (double TokS, double Fraction)[2];
                double before = ProbeRead();
                for (int round = 0; round < nRounds; round++)
                    for (int steered = 0; steered < 2; steered++)
                    {
                        double tokS = Decode(t, caches.Take(b).ToList(), ctx, p.GetValue(steps), steered == 1 ? vector : null);
                        double after = ProbeRead();
                        var local = m with { ReadGBs = Math.Max(before, after) };
                        before = after;
                        m = Max(m, local);
                        double fraction = tokS / roof.DecodeTokS(local, b, ctx);
                        if (fraction > best[steered].Fraction) best[steered] = (tokS, fraction);
                    }
                for (int steered = 0; steered < 2; steered++)
                    decode.Add(new DecodeResult(b, steered == 1, best[steered].TokS, best[steered].Fraction, roof.DecodeBound(m, b, ctx)));
            }
            // Overheads from steps that alternate one by one between the two variants, so that other
            // work on the machine falls on both alike (separate timed runs differ by a few per cent).
            log.WriteLine($"decode batch {maxBatch}: steering overhead, steps alternating unsteered / steered…");
            int pairs = 2 * nRounds * p.GetValue(steps);
            var big = caches.Take(maxBatch).ToList();
            double overhead = Overhead(t, big, ctx, pairs, (null, null), (vector, null));
            log.WriteLine($"decode batch {maxBatch}: monitoring overhead, steps alternating steered / steered and monitored…");
            double monitorOverhead = Overhead(t, big, ctx, pairs, (vector, null), (vector, new ProjectionCost(t.Config, vector)));

            // The limits again, after the tests: a burst of other work during the earlier probes would
            // understate them and flatter every fraction, so the highest reading of each counts.
            log.WriteLine("measuring the machine again…");
            m = Max(m, Probe());
            prefillRoof = roof.PrefillTokS(m, p.GetValue(prefill));
            // A compute-bound decode fraction follows the compute peaks, which do not drift; a
            // bandwidth-bound one keeps its rounds' own bandwidth.
            decode = decode.Select(d =>
            {
                string bound = roof.DecodeBound(m, d.Batch, ctx);
                return bound == "bandwidth" ? d with { Bound = bound } : d with { Fraction = d.TokS / roof.DecodeTokS(m, d.Batch, ctx), Bound = bound };
            }).ToList();

            List<(string Test, IReadOnlyList<(string Op, double Seconds, long Calls)> Ops)> profiles = [];
            if (p.GetValue(profile))
            {
                log.WriteLine("profiling…");
                t.Profile = new OpProfile();
                Prefill(t, p.GetValue(prefill), rng, 1);
                profiles.Add(($"prefill {p.GetValue(prefill)}", t.Profile.Totals()));
                t.Profile = new OpProfile();
                Decode(t, caches.Take(maxBatch).ToList(), ctx, p.GetValue(steps), vector);
                profiles.Add(($"decode batch {maxBatch} steered, {p.GetValue(steps) + 1} steps", t.Profile.Totals()));
                t.Profile = null;
            }

            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    model = dir, kernels = t.Kernels, parameters = roof.MatmulParameters,
                    machine = new { read_gb_s = m.ReadGBs, f32_gflop_s = m.F32Gflops, bf16_gflop_s = m.Bf16DotGflops, compute_gflop_s = m.Bf16Gflops },
                    prefill = new { tokens = p.GetValue(prefill), tok_s = prefillTokS, roofline_fraction = prefillTokS / prefillRoof },
                    decode = decode.Select(d => new { batch = d.Batch, steered = d.Steered, context = ctx, tok_s = d.TokS, roofline_fraction = d.Fraction, bound = d.Bound }),
                    steering_overhead = overhead,
                    monitoring_overhead = monitorOverhead,
                    profile = profiles.Count == 0 ? null : profiles.Select(pr => new
                    {
                        test = pr.Test, ops = pr.Ops.Select(o => new { op = o.Op, seconds = o.Seconds, calls = o.Calls }),
                    }),
                }, new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull }));
            else
            {
                Print(dir, t, m, roof, p.GetValue(prefill), prefillTokS, prefillRoof, decode, ctx, overhead, monitorOverhead);
                foreach (var (test, ops) in profiles) PrintProfile(test, ops);
            }
            return 0;
        }));
        return command;
    }

    sealed record DecodeResult(int Batch, bool Steered, double TokS, double Fraction, string Bound);

    /// <summary>
    /// The machine's limits, from libsteer_cpu's probes (all threads). The compute limit of a bf16-weight
    /// product is the faster of the bf16 dot-product and f32 FMA peaks: the GEMM widens weights to f32
    /// when that is faster on this CPU, so both are reported and the larger bounds the roofline.
    /// </summary>
    static MachineLimits Probe()
    {
        double read = NativeCpu.ProbeReadBandwidth(1L << 30, 5);
        double f32 = NativeCpu.ProbeF32FmaGflops();
        double bf16 = NativeCpu.ProbeBf16DotGflops();
        return new MachineLimits(read, f32, Math.Max(bf16, f32)) { Bf16DotGflops = bf16 };
    }

    /// <summary>Read bandwidth alone, as in <see cref="Probe"/> (1 GB; smaller buffers read faster on
    /// the development VM than a model's weights stream): about half a second.</summary>
    static double ProbeRead() => NativeCpu.ProbeReadBandwidth(1L << 30, 3);

    static MachineLimits Max(MachineLimits a, MachineLimits b) =>
        new(Math.Max(a.ReadGBs, b.ReadGBs), Math.Max(a.F32Gflops, b.F32Gflops), Math.Max(a.Bf16Gflops, b.Bf16Gflops))
        {
            Bf16DotGflops = Math.Max(a.Bf16DotGflops, b.Bf16DotGflops),
        };

    static double Prefill(Transformer t, int tokens, Random rng, int rounds)
    {
        int[] prompt = RandomTokens(rng, tokens, t.Config.VocabSize);
        double best = double.MaxValue;
        for (int run = 0; run < rounds; run++)
        {
            var clock = Stopwatch.StartNew();
            t.Forward([new ForwardSequence(t.NewCache(tokens), prompt)]);
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return tokens / best;
    }

    /// <summary>One new token per cache; steered: at the middle block, each row with its own multiplier.</summary>
    static List<ForwardSequence> DecodeBatch(Transformer t, List<KvCache> caches, int context, float[]? vector) =>
        caches.Select((c, i) => new ForwardSequence(c, [1 + i], vector is null ? null
            : new SequenceSteering([new SteeringAdd(t.Config.NumLayers / 2, vector, 0.25f + i * 0.1f)], context))).ToList();

    /// <summary>Steps of one token for each cache (<see cref="DecodeBatch"/>), after a warm-up step.</summary>
    internal static double Decode(Transformer t, List<KvCache> caches, int context, int steps, float[]? vector, Capture.IHiddenStateSink? sink = null)
    {
        var batch = DecodeBatch(t, caches, context, vector);
        float[][] logits = LogitBuffers.Allocate(batch, t.Config.VocabSize); // kept across steps, as a decode loop keeps them
        t.ForwardInto(batch, logits, sink);
        var clock = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++) t.ForwardInto(batch, logits, sink);
        double seconds = clock.Elapsed.TotalSeconds;
        foreach (KvCache c in caches) c.Truncate(context);
        return caches.Count * steps / seconds;
    }

    /// <summary>1 − (time of the base steps) / (time of the variant's steps), over alternating single steps at one context length.</summary>
    static double Overhead(Transformer t, List<KvCache> caches, int context, int pairs,
        (float[]? Vector, Capture.IHiddenStateSink? Sink) baseline, (float[]? Vector, Capture.IHiddenStateSink? Sink) variant)
    {
        var batches = new[] { DecodeBatch(t, caches, context, baseline.Vector), DecodeBatch(t, caches, context, variant.Vector) };
        var sinks = new[] { baseline.Sink, variant.Sink };
        float[][] logits = LogitBuffers.Allocate(batches[0], t.Config.VocabSize);
        var seconds = new double[2];
        for (int step = -1; step < pairs; step++)
            for (int which = 0; which < 2; which++)
            {
                var clock = Stopwatch.StartNew();
                t.ForwardInto(batches[which], logits, sinks[which]);
                if (step >= 0) seconds[which] += clock.Elapsed.TotalSeconds; // step -1 warms both up
                foreach (KvCache c in caches) c.Truncate(context);
            }
        return 1 - seconds[0] / seconds[1];
    }

    internal static int[] RandomTokens(Random rng, int n, int vocab) => Enumerable.Range(0, n).Select(_ => rng.Next(Math.Min(vocab, 128000))).ToArray();

    internal static string CachedModel(string shape)
    {
        string cache = Environment.GetEnvironmentVariable("STEER_CACHE")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "steerengine");
        return RandomModel.Cached(ModelShapes.Get(shape), 0, Path.Combine(cache, $"{shape}-seed0"),
            dir => Console.Error.WriteLine($"generating a random {shape} model in {dir}"));
    }

    static void Print(string dir, Transformer t, MachineLimits m, Roofline roof, int prefillTokens, double prefillTokS, double prefillRoof,
        List<DecodeResult> decode, int context, double overhead, double monitorOverhead)
    {
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(dir)}[/] · {roof.MatmulParameters / 1e9:0.00} B matmul parameters · kernels: {t.Kernels}");
        AnsiConsole.MarkupLine($"machine: read {m.ReadGBs:0.0} GB/s · f32 FMA {m.F32Gflops:0} GFLOP/s · bf16 dot {m.Bf16DotGflops:0} GFLOP/s · compute roofline uses {m.Bf16Gflops:0} GFLOP/s");
        var table = new Table().AddColumns("test", "tok/s", "roofline tok/s", "fraction", "bound by");
        table.AddRow($"prefill {prefillTokens}", $"{prefillTokS:0.0}", $"{prefillRoof:0.0}", $"{prefillTokS / prefillRoof:P0}", "compute");
        foreach (DecodeResult d in decode)
            table.AddRow($"decode batch {d.Batch}{(d.Steered ? $" steered ({d.Batch} multipliers)" : "")}", $"{d.TokS:0.0}",
                $"{d.TokS / d.Fraction:0.0}", $"{d.Fraction:P0}", d.Bound);
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"steering overhead at batch {decode.Max(d => d.Batch)}: {overhead:P1}; per-token monitoring (2 layers) on top: {monitorOverhead:P1} (context {context} tokens)");
    }

    static void PrintProfile(string test, IReadOnlyList<(string Op, double Seconds, long Calls)> ops)
    {
        double total = ops.Sum(o => o.Seconds);
        var table = new Table().Title($"time per op: {Markup.Escape(test)}").AddColumns("op", "seconds", "share", "calls");
        foreach (var (op, seconds, calls) in ops)
            table.AddRow(Markup.Escape(op), $"{seconds:0.000}", $"{seconds / total:P1}", $"{calls}");
        AnsiConsole.Write(table);
    }

    /// <summary>The work per-token monitoring adds: every row's projection onto a direction at two layers.</summary>
    sealed class ProjectionCost(ModelConfig c, float[] vector) : Capture.IHiddenStateSink
    {
        readonly int[] _entries = [c.NumLayers / 2 + 1, c.NumLayers];
        readonly float _norm = System.Numerics.Tensors.TensorPrimitives.Norm(vector);
        public double Sum { get; private set; }

        public void Record(int entry, ReadOnlySpan<float> states, Capture.BatchLayout layout)
        {
            if (Array.IndexOf(_entries, entry) < 0) return;
            for (int r = 0; r < layout.Rows; r++)
                Sum += System.Numerics.Tensors.TensorPrimitives.Dot(states.Slice(r * vector.Length, vector.Length), vector) / _norm;
        }
    }
}
