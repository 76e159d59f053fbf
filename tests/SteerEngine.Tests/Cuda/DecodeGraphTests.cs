using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// Decode steps as device graphs (CudaTransformer.Graphs.cs) on native/cuemu: replaying a captured
/// graph with new step inputs equals launching every kernel directly, bit for bit, and a new shape
/// captures a new graph.
/// </summary>
[TestFixture]
public class DecodeGraphTests
{
    static CudaTransformer Emulated(int tp, bool graphs)
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        var model = CudaTransformer.Load(TestModels.Get("tiny"), CudaPlatform.Emulated, tp);
        model.DecodeGraphs = graphs;
        model.DecodeChunk = 16; // many key splits, so splits by capacity and by length differ
        model.KvPagePositions = 16; // capacities in steps of 16 positions, not 256
        return model;
    }

    /// <summary>The same steps on a model with graphs and one without, compared bit for bit.</summary>
    sealed class Pair(int tp) : IDisposable
    {
        public readonly CudaTransformer Graphed = Emulated(tp, true), Direct = Emulated(tp, false);
        readonly List<(KvCache G, KvCache D)> _rows = [];

        public int Rows => _rows.Count;

        public int Add(int capacity)
        {
            _rows.Add((Graphed.NewCache(capacity), Direct.NewCache(capacity)));
            return _rows.Count - 1;
        }

        public void Remove(int row) => _rows.RemoveAt(row);

        /// <summary>One forward of the rows (all, or those given) with these tokens and steering; logits (and draws, if any) must be equal.</summary>
        public void Step(int[][] tokens, SequenceSteering?[] steering, TokenDraw?[]? draws, string what, int[]? rows = null)
        {
            int V = Graphed.Config.VocabSize;
            rows ??= Enumerable.Range(0, tokens.Length).ToArray();
            List<ForwardSequence> Batch(bool graphed) => tokens.Select((t, i) => new ForwardSequence(graphed ? _rows[rows[i]].G : _rows[rows[i]].D, t, steering[i])).ToList();
            List<ForwardSequence> g = Batch(true), d = Batch(false);
            float[][] gl = LogitBuffers.Allocate(g, V), dl = LogitBuffers.Allocate(d, V);
            if (draws is null)
            {
                Graphed.ForwardInto(g, gl);
                Direct.ForwardInto(d, dl);
            }
            else
            {
                DrawnToken?[] gd = Graphed.ForwardSample(g, gl, draws), dd = Direct.ForwardSample(d, dl, draws);
                for (int r = 0; r < tokens.Length; r++)
                {
                    Assert.That(gd[r]?.Token, Is.EqualTo(dd[r]?.Token), $"{what}: drawn token of row {r}");
                    Assert.That(gd[r]?.Logprob, Is.EqualTo(dd[r]?.Logprob), $"{what}: log-prob of row {r}");
                    Assert.That(gd[r]?.TopLogprobs, Is.EqualTo(dd[r]?.TopLogprobs), $"{what}: top log-probs of row {r}");
                }
            }
            for (int r = 0; r < tokens.Length; r++)
                if (draws?[r] is null) // a row drawn on the device gets no logits (its buffer is left as allocated)
                    Assert.That(gl[r], Is.EqualTo(dl[r]), $"{what}: logits of row {r}");
        }

        public void Dispose()
        {
            Graphed.Dispose();
            Direct.Dispose();
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Graph_replay_equals_direct_launch_over_decode_steps_and_a_new_shape_captures_anew(int tp)
    {
        using var pair = new Pair(tp);
        ModelConfig c = pair.Graphed.Config;
        int V = c.VocabSize, H = c.HiddenSize;
        var rng = new Random(20 + tp);
        float[] a = Compare.RandomVector(rng, H, 0.5f), b = Compare.RandomVector(rng, H, 0.5f);
        SequenceSteering Steer(float multiplier, int promptLength, SteeringPositions positions = SteeringPositions.All) =>
            new([new SteeringAdd(1, a, multiplier, positions), new SteeringAdd(2, b, -multiplier, positions)], promptLength);
        int[][] Tokens(int rows) => Enumerable.Range(0, rows).Select(_ => new[] { rng.Next(V) }).ToArray();

        // Three rows of odd lengths and capacities, each its own steering (one response-only, one none).
        int[] lengths = [13, 29, 5];
        foreach (int cap in new[] { 37, 50, 21 }) pair.Add(cap);
        SequenceSteering?[] steering = [Steer(3f, 13), Steer(-2f, 29, SteeringPositions.Response), null];
        pair.Step(lengths.Select(n => Compare.RandomTokens(rng, n, V)).ToArray(), steering, null, "prefill");
        Assert.That(pair.Graphed.GraphCounts, Is.EqualTo((0, 0)), "a prefill launches directly");

        // Decode steps with new tokens, positions and steering rows (multipliers change, a row gains
        // and a row loses its steering): one capture, then replays.
        for (int step = 0; step < 3; step++)
        {
            if (step == 1) steering = [Steer(5f, 13), steering[1], Steer(1f, 5)];
            if (step == 2) steering = [null, steering[1], steering[2]];
            pair.Step(Tokens(3), steering, null, $"decode step {step}");
        }
        Assert.That(pair.Graphed.GraphCounts, Is.EqualTo((tp, 2 * tp)), "graphs captured, replays");

        // Two steps that draw rows 0 and 2: drawn on the device, the lm_head's launches change (one
        // more graph, then its replay); drawn on the host from full logits, the graph above replays.
        (int captures, int replays) = pair.Graphed.GraphCounts;
        for (int step = 3; step < 5; step++)
        {
            TokenDraw?[] draws = [new TokenDraw(new SamplingOptions(Temperature: 0.8f), rng.NextDouble(), true, 3), null,
                new TokenDraw(new SamplingOptions(Temperature: 1f, TopP: 0.9f), rng.NextDouble(), false, 0)];
            pair.Step(Tokens(3), steering, draws, $"decode step {step}, drawn");
        }
        Assert.That(pair.Graphed.GraphCounts.Captures - captures, Is.AtMost(tp), "at most one new graph per rank");
        Assert.That(pair.Graphed.GraphCounts.Replays - replays, Is.AtLeast(tp), "the second drawing step replays");

        // A row finishes: a smaller batch is a new shape.
        pair.Remove(1);
        steering = [steering[0], steering[2]];
        captures = pair.Graphed.GraphCounts.Captures;
        pair.Step(Tokens(2), steering, null, "two rows");
        Assert.That(pair.Graphed.GraphCounts.Captures, Is.EqualTo(captures + tp), "batch of two captured");
        pair.Step(Tokens(2), steering, null, "two rows again");
        Assert.That(pair.Graphed.GraphCounts.Captures, Is.EqualTo(captures + tp), "batch of two replayed");

        // A row joins with a larger capacity: more key splits, a new graph.
        int joined = pair.Add(90);
        pair.Step([Compare.RandomTokens(rng, 7, V)], [Steer(2f, 7)], null, "joining row's prefill", [joined]);
        steering = [steering[0], steering[1], Steer(2f, 7)];
        for (int step = 0; step < 2; step++) pair.Step(Tokens(3), steering, null, $"after the join, step {step}");
        Assert.That(pair.Graphed.GraphCounts.Captures, Is.EqualTo(captures + 2 * tp), "capacity 90 needs more key splits: captured once");
    }

    [TestCase(1)]
    [TestCase(2)]
    public void Graph_replay_equals_direct_launch_with_attention_output_terms(int tp)
    {
        using var pair = new Pair(tp);
        ModelConfig c = pair.Graphed.Config;
        int V = c.VocabSize;
        var rng = new Random(40 + tp);
        float[] z = Compare.RandomVector(rng, c.QDim, 0.5f), head = Compare.RandomVector(rng, c.HeadDim, 0.5f);
        // A whole-row add and add_normalized (which TP 2 gathers for), and a set on the last head.
        SequenceSteering Steer(float multiplier, int promptLength) => new(
        [
            new SteeringAdd(1, z, multiplier) { Hook = SteeringHook.AttnZ },
            new SteeringAdd(2, z, multiplier) { Hook = SteeringHook.AttnZ, Op = SteeringOp.AddNormalized },
            new SteeringAdd(2, head, 0f) { Hook = SteeringHook.AttnZ, Head = c.NumHeads - 1, Op = SteeringOp.Set, Value = multiplier },
        ], promptLength);
        int[][] Tokens(int rows) => Enumerable.Range(0, rows).Select(_ => new[] { rng.Next(V) }).ToArray();

        int[] lengths = [11, 6, 17];
        foreach (int cap in new[] { 30, 20, 40 }) pair.Add(cap);
        SequenceSteering?[] steering = [Steer(3f, 11), null, Steer(-2f, 17)];
        pair.Step(lengths.Select(n => Compare.RandomTokens(rng, n, V)).ToArray(), steering, null, "prefill");

        // New multipliers replay the graph; a step without attn_z terms is another graph, and the
        // steered graph replays when they come back.
        for (int step = 0; step < 3; step++)
        {
            steering = [Steer(3f + step, 11), null, Steer(-2f - step, 17)];
            pair.Step(Tokens(3), steering, null, $"decode step {step}");
        }
        Assert.That(pair.Graphed.GraphCounts, Is.EqualTo((tp, 2 * tp)), "graphs captured, replays");
        pair.Step(Tokens(3), [null, null, null], null, "unsteered step");
        pair.Step(Tokens(3), steering, null, "steered again");
        Assert.That(pair.Graphed.GraphCounts, Is.EqualTo((2 * tp, 3 * tp)), "the unsteered step captured, the steered graph replayed");
    }
}
