using System.Diagnostics;
using System.Text.Json;
using Spectre.Console;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer bench --steering-mix</c>: the cost of steering when every row of a batch-64 decode step
/// carries a different operation or hook point (each op at resid_post, resid_mid, attn_z over all
/// heads and attn_z of one head, at the middle block, with its own multiplier), against the same
/// steps unsteered and with today's plain add (one vector, 64 multipliers, at the block output).
/// The three variants alternate step by step in one run, so other work on the machine falls on all alike.
/// </summary>
static class BenchSteeringMix
{
    const int Batch = 64;

    public static int Run(Transformer t, int context, int steps, int rounds, bool json, TextWriter log)
    {
        ModelConfig c = t.Config;
        var rng = new Random(23);
        log.WriteLine($"decode batch {Batch}: prefilling {Batch} sequences of {context} tokens…");
        var caches = Enumerable.Range(0, Batch).Select(_ => t.NewCache(context + 2)).ToList();
        for (int first = 0; first < Batch; first += 16)
            t.Forward(caches.Skip(first).Take(16).Select(k => new ForwardSequence(k, BenchCommand.RandomTokens(rng, context, c.VocabSize))).ToList());

        int layer = c.NumLayers / 2;
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        float[] residual = Random(c.HiddenSize), attention = Random(c.QDim), head = Random(c.HeadDim);
        SteeringAdd[] PlainAdd(int i) => [new SteeringAdd(layer, residual, 0.25f + i * 0.1f)];
        SteeringAdd[] Mixed(int i) => [MixTerm(i, layer, residual, attention, head, c.NumHeads)];
        var variants = new (string Name, Func<int, SteeringAdd[]>? Terms)[] { ("unsteered", null), ("plain add", PlainAdd), ("op and hook mix", Mixed) };
        var batches = variants.Select(v => caches.Select((k, i) => new ForwardSequence(k, [1 + i],
            v.Terms is null ? null : new SequenceSteering(v.Terms(i), context))).ToList()).ToArray();

        int pairs = 2 * Math.Max(1, rounds) * steps;
        log.WriteLine($"decode batch {Batch}: {pairs} steps of each variant, alternating…");
        float[][] logits = LogitBuffers.Allocate(batches[0], c.VocabSize);
        var seconds = new double[variants.Length];
        for (int step = -1; step < pairs; step++)
            for (int v = 0; v < variants.Length; v++)
            {
                var clock = Stopwatch.StartNew();
                t.ForwardInto(batches[v], logits);
                if (step >= 0) seconds[v] += clock.Elapsed.TotalSeconds; // step -1 warms every variant up
                foreach (var k in caches) k.Truncate(context);
            }

        double mixVsNone = 1 - seconds[0] / seconds[2], mixVsAdd = 1 - seconds[1] / seconds[2], addVsNone = 1 - seconds[0] / seconds[1];
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                kernels = t.Kernels, batch = Batch, context, steps = pairs,
                tok_s = variants.Select((v, i) => new { variant = v.Name, tok_s = Batch * pairs / seconds[i] }),
                mix_overhead_vs_unsteered = mixVsNone, mix_overhead_vs_plain_add = mixVsAdd, plain_add_overhead_vs_unsteered = addVsNone,
            }));
        else
        {
            var table = new Table().AddColumns("decode batch 64", "tok/s");
            for (int i = 0; i < variants.Length; i++) table.AddRow(variants[i].Name, $"{Batch * pairs / seconds[i]:0.0}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"overhead of the op and hook mix: {mixVsNone:P1} against unsteered, {mixVsAdd:P1} against the plain add; " +
                $"the plain add against unsteered: {addVsNone:P1} ({t.Kernels} kernels, context {context}, {pairs} steps each)");
        }
        return 0;
    }

    /// <summary>
    /// Row i's term: op i mod 5 at hook variant (i / 5) mod 4 (resid_post, resid_mid, attn_z, attn_z of
    /// head i mod heads), at positions that select every decode step, with its own multiplier.
    /// </summary>
    static SteeringAdd MixTerm(int i, int layer, float[] residual, float[] attention, float[] head, int heads)
    {
        var op = (SteeringOp)(i % 5);
        int variant = i / 5 % 4;
        var positions = (i / 20 % 3) switch { 0 => SteeringPositions.All, 1 => SteeringPositions.Response, _ => SteeringPositions.FirstK };
        (SteeringHook hook, float[] vector, int? h) = variant switch
        {
            0 => (SteeringHook.ResidPost, residual, (int?)null),
            1 => (SteeringHook.ResidMid, residual, null),
            2 => (SteeringHook.AttnZ, attention, null),
            _ => (SteeringHook.AttnZ, head, i % heads),
        };
        return new SteeringAdd(layer, vector, 0.25f + i * 0.1f, positions)
        {
            Op = op, Hook = hook, Head = h, Lo = -0.5f, Hi = 0.5f, Value = 0.25f, FirstK = 1 << 20,
        };
    }
}
