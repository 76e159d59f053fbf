using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer bench --sweep</c>: what a batch job delivers against the engine's decode speed, in one
/// process: batch-64 steered decode, sampling's share of a batch-64 step (fast sampler and the
/// reference it replaces), sweep jobs' generated tokens over their wall time, and what sharing
/// blocks 0..L between a layer sweep's rows would save (<see cref="BenchLayerSweep"/>).
/// </summary>
static class BenchSweep
{
    const int PromptTokens = 40, Prompts = 4, Batch = 64;

    sealed record JobResult(string Name, int Rows, double Seconds, long Generated, double TokS, double OfDecode);
    sealed record SamplingResult(string Options, double FastSeconds, double FastShare, double ReferenceSeconds, double ReferenceShare);

    public static int Run(Transformer t, string dir, int newTokens, int rounds, bool json, TextWriter log)
    {
        var rng = new Random(19);
        float[] vector = Enumerable.Range(0, t.Config.HiddenSize).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        int layer = t.Config.NumLayers / 2, context = PromptTokens + newTokens / 2;

        log.WriteLine($"decode batch {Batch}, steered, context {context} (a sweep row's average)…");
        var caches = Enumerable.Range(0, Batch).Select(_ => t.NewCache(context + 8)).ToList();
        for (int first = 0; first < Batch; first += 16)
            t.Forward(caches.Skip(first).Take(16).Select(c => new ForwardSequence(c, BenchCommand.RandomTokens(rng, context, t.Config.VocabSize))).ToList());
        var batch = caches.Select((c, i) => new ForwardSequence(c, [1 + i],
            new SequenceSteering([new SteeringAdd(layer, vector, 0.25f + i * 0.1f)], context))).ToList();
        float[][] logits = Runtime.LogitBuffers.Allocate(batch, t.Config.VocabSize);
        t.ForwardInto(batch, logits);
        foreach (KvCache c in caches) c.Truncate(context);
        // The best of a few 4-step rounds; taken again after every job, and each job is set against
        // the decode measured just before and after it (other work on a shared machine comes and goes).
        double Step()
        {
            double best = double.MaxValue;
            for (int round = 0; round < Math.Max(2, rounds); round++)
            {
                var clock = Stopwatch.StartNew();
                for (int s = 0; s < 4; s++) t.ForwardInto(batch, logits);
                best = Math.Min(best, clock.Elapsed.TotalSeconds / 4);
                foreach (KvCache c in caches) c.Truncate(context);
            }
            return best;
        }
        double step = Step();
        double decodeTokS = Batch / step;

        log.WriteLine("sampling a batch-64 step's logits…");
        var sampling = new List<SamplingResult>();
        foreach ((string name, SamplingOptions o) in new[]
        {
            ("greedy", new SamplingOptions()), ("temperature 1", new SamplingOptions(1f)), ("top-p 0.9", new SamplingOptions(1f, TopP: 0.9f)),
            ("top-k 50", new SamplingOptions(1f, TopK: 50)), ("min-p 0.05", new SamplingOptions(1f, MinP: 0.05f)),
        })
        {
            double fast = double.MaxValue;
            for (int round = 0; round < 5; round++)
            {
                var clock = Stopwatch.StartNew();
                Parallel.For(0, Batch, r => Sampler.Sample(logits[r], o, (r + 0.5) / Batch));
                fast = Math.Min(fast, clock.Elapsed.TotalSeconds);
            }
            // The sampler as it was: one row after another.
            var reference = Stopwatch.StartNew();
            for (int r = 0; r < Batch; r++) ReferenceSampler.Sample(logits[r], o, (r + 0.5) / Batch);
            double before = reference.Elapsed.TotalSeconds;
            sampling.Add(new SamplingResult(name, fast, fast / (step + fast), before, before / (step + before)));
        }

        int[][] prompts = Enumerable.Range(0, Prompts).Select(_ => BenchCommand.RandomTokens(rng, PromptTokens, t.Config.VocabSize)).ToArray();
        var jobs = new List<JobResult>();
        foreach ((int multipliers, int samples, SteeringPositions positions) in new[] { (4, 4, SteeringPositions.All), (16, 1, SteeringPositions.Response) })
        foreach (bool share in new[] { true, false })
        {
            string name = $"{Prompts} × {multipliers} × {samples}, positions {positions.ToString().ToLowerInvariant()}, {(share ? "shared prefixes" : "every row its own prefill")}";
            log.WriteLine($"sweep job: {name}…");
            var requests = (from p in Enumerable.Range(0, Prompts)
                            from m in Enumerable.Range(0, multipliers)
                            from s in Enumerable.Range(0, samples)
                            select new GenerationRequest(prompts[p], newTokens, new SamplingOptions(1f, TopP: 0.9f),
                                [new SteeringAdd(layer, vector, -2f + 4f * m / Math.Max(1, multipliers - 1), positions)],
                                Seed: SplitMix64.Hash((ulong)(p * 1000 + s)))).ToList();
            var clock = Stopwatch.StartNew();
            var results = new Generator(t, options: new SchedulerOptions(MaxSequences: Batch, SharePrefixes: share)).Generate(requests);
            double seconds = clock.Elapsed.TotalSeconds;
            long generated = results.Sum(r => (long)r.Tokens.Length);
            double before = decodeTokS;
            decodeTokS = Batch / Step();
            jobs.Add(new JobResult(name, requests.Count, seconds, generated, generated / seconds, generated / seconds / ((before + decodeTokS) / 2)));
        }

        log.WriteLine($"layer sweep: {Prompts} prompts × every layer, positions all…");
        BenchLayerSweep.Result layers = BenchLayerSweep.Run(t, prompts, vector, newTokens);

        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                model = dir, kernels = t.Kernels, decode = new { batch = Batch, steered = true, context, tok_s = Batch / step, step_seconds = step, tok_s_at_end = decodeTokS },
                sampling = sampling.Select(s => new { options = s.Options, seconds = s.FastSeconds, share = s.FastShare, reference_seconds = s.ReferenceSeconds, reference_share = s.ReferenceShare }),
                jobs = jobs.Select(j => new { job = j.Name, rows = j.Rows, seconds = j.Seconds, generated_tokens = j.Generated, tok_s = j.TokS, of_decode = j.OfDecode }),
                layer_sweep = new
                {
                    rows = layers.Rows, layers = layers.Layers, job_seconds = layers.JobSeconds, prefill_seconds = layers.PrefillSeconds,
                    prefill_share = layers.PrefillShare, shareable_block_share = layers.BlockShare, job_saving = layers.JobSaving,
                },
            }));
        else
        {
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(dir)}[/] · kernels: {t.Kernels} · batch-{Batch} steered decode: {Batch / step:0.0} tok/s ({step * 1000:0} ms a step, context {context}) at the start, {decodeTokS:0.0} at the end");
            var table = new Table().Title($"sampling {Batch} rows of a batch-{Batch} step").AddColumns("options", "ms", "share of the step", "reference ms", "reference share");
            foreach (SamplingResult s in sampling)
                table.AddRow(s.Options, $"{s.FastSeconds * 1000:0.00}", $"{s.FastShare:P1}", $"{s.ReferenceSeconds * 1000:0}", $"{s.ReferenceShare:P1}");
            AnsiConsole.Write(table);
            var jobTable = new Table().Title($"sweep jobs ({PromptTokens}-token prompts, {newTokens} new tokens, temperature 1, top-p 0.9)").AddColumns("prompts × multipliers × samples", "rows", "seconds", "generated tok/s", "of batch-64 decode (before and after)");
            foreach (JobResult j in jobs) jobTable.AddRow(Markup.Escape(j.Name), $"{j.Rows}", $"{j.Seconds:0.0}", $"{j.TokS:0.0}", $"{j.OfDecode:P0}");
            AnsiConsole.Write(jobTable);
            AnsiConsole.MarkupLine($"layer sweep ({Prompts} prompts × {layers.Layers} layers, positions all, {layers.Rows} rows): job {layers.JobSeconds:0.0} s, its rows' prefill alone {layers.PrefillSeconds:0.0} s " +
                $"({layers.PrefillShare:P0} of the job); a trunk of blocks 0..L shared between layers would skip {layers.BlockShare:P0} of the prefill's block work, {layers.JobSaving:P1} of the job");
        }
        return 0;
    }
}
