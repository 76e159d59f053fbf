using System.Diagnostics;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// Part of <c>steer bench --sweep</c>: what sharing blocks 0..L between rows that differ only in
/// their steering layer L would save, measured before building it. A layer sweep (every layer, the
/// same prompt and multiplier, positions all) is run as a job, and its rows' prefill alone is timed;
/// the shareable part is the block work a shared trunk would not repeat: the trunk computes blocks
/// 0..max L once and each row its blocks after its own layer (prefill time spread evenly over blocks).
/// </summary>
static class BenchLayerSweep
{
    public sealed record Result(int Rows, int Layers, double JobSeconds, double PrefillSeconds, double BlockShare)
    {
        public double PrefillShare => PrefillSeconds / JobSeconds;
        public double JobSaving => PrefillShare * BlockShare;
    }

    public static Result Run(Transformer t, int[][] prompts, float[] vector, int newTokens)
    {
        int N = t.Config.NumLayers;
        var rows = (from p in prompts from layer in Enumerable.Range(0, N) select (Prompt: p, Layer: layer)).ToList();
        List<SteeringAdd> Steering(int layer) => [new SteeringAdd(layer, vector, 1f, SteeringPositions.All)];

        var requests = rows.Select((r, i) => new GenerationRequest(r.Prompt, newTokens, new SamplingOptions(1f, TopP: 0.9f), Steering(r.Layer),
            Seed: SplitMix64.Hash((ulong)i))).ToList();
        var clock = Stopwatch.StartNew();
        new Generator(t, options: new SchedulerOptions(MaxSequences: 64, SharePrefixes: true)).Generate(requests);
        double job = clock.Elapsed.TotalSeconds;

        // The same rows' prompts alone, as many rows a forward pass as the scheduler's 512-token steps hold.
        clock.Restart();
        foreach (var chunk in rows.Chunk(Math.Max(1, new SchedulerOptions().MaxTokensPerStep / prompts[0].Length)))
            t.Forward(chunk.Select(r => new ForwardSequence(t.NewCache(r.Prompt.Length + 1), r.Prompt,
                new SequenceSteering(Steering(r.Layer), r.Prompt.Length))).ToList());
        double prefill = clock.Elapsed.TotalSeconds;

        // Per prompt: N rows of N blocks each, against a trunk of N blocks plus Σ (N − 1 − L) blocks of their own.
        double own = Enumerable.Range(0, N).Sum(layer => N - 1 - layer);
        double blockShare = 1 - (N + own) / ((double)N * N);
        return new Result(rows.Count, N, job, prefill, blockShare);
    }
}
