using SteerEngine.Capture;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

/// <summary>The exact f32 CPU path against the PyTorch oracle (DESIGN.md §4: max|Δlogit|/max|logit| ≤ 1e-4).</summary>
[TestFixture]
public class OracleForwardTests
{
    const double Tolerance = 1e-4;

    static (Transformer Model, int[][] Sequences) Setup(string shape, int seed)
    {
        var model = Transformer.Load(TestModels.Get(shape));
        var rng = new Random(seed);
        // Lengths that are not multiples of anything, up to past the tiny model's rope original context (64).
        int[][] sequences = [Compare.RandomTokens(rng, 5, 128000), Compare.RandomTokens(rng, 23, 128000), Compare.RandomTokens(rng, 71, 128000)];
        return (model, sequences);
    }

    static float[][] ForwardBatch(Transformer model, int[][] sequences, SequenceSteering?[]? steering = null, IHiddenStateSink? sink = null) =>
        model.Forward(sequences.Select((s, i) => new ForwardSequence(model.NewCache(), s, steering?[i], allLogits: true)).ToList(), sink);

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Logits_match_torch_for_a_mixed_length_batch(string shape)
    {
        var (model, sequences) = Setup(shape, 11);
        using (model)
        {
            float[][] logits = ForwardBatch(model, sequences);
            using var oracle = TorchOracle.Forward(TestModels.Get(shape), sequences);
            for (int i = 0; i < sequences.Length; i++)
            {
                double err = Compare.RelativeMaxError(logits[i], TorchOracle.Tensor(oracle, $"logits.{i}"));
                Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"sequence {i} (length {sequences[i].Length})");
            }
        }
    }

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Hidden_states_match_torch_output_hidden_states(string shape)
    {
        var (model, sequences) = Setup(shape, 12);
        using (model)
        {
            var recorder = new HiddenStateRecorder(model.Config.NumLayers + 1, model.Config.HiddenSize);
            ForwardBatch(model, sequences, sink: recorder);
            using var oracle = TorchOracle.Forward(TestModels.Get(shape), sequences, hiddenStates: true);
            int H = model.Config.HiddenSize;
            for (int i = 0; i < sequences.Length; i++)
            {
                float[] expected = TorchOracle.Tensor(oracle, $"hidden.{i}"); // (L+1, T, H)
                int T = sequences[i].Length;
                for (int entry = 0; entry <= model.Config.NumLayers; entry++)
                {
                    double err = Compare.RelativeMaxError(recorder.Get(entry, i), expected.AsSpan(entry * T * H, T * H));
                    Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"sequence {i}, hidden state {entry}");
                }
            }
        }
    }

    [TestCase("tiny", 1)]
    [TestCase("qwen3-tiny", 1)]
    public void Steered_logits_match_torch_hook_per_row(string shape, int layer)
    {
        var (model, sequences) = Setup(shape, 13);
        using (model)
        {
            var rng = new Random(5);
            int H = model.Config.HiddenSize;
            float[] v1 = Compare.RandomVector(rng, H), v2 = Compare.RandomVector(rng, H);
            int[] promptLens = [3, 15, 40];
            // Each row its own steering: a different mode and multiplier, and row 2 two vectors at two layers.
            SteeringAdd[][] adds =
            [
                [new SteeringAdd(layer, v1, 4f, SteeringPositions.All)],
                [new SteeringAdd(layer, v1, -6f, SteeringPositions.Prompt)],
                [new SteeringAdd(layer, v1, 8f, SteeringPositions.Response), new SteeringAdd(layer + 1, v2, 3f, SteeringPositions.All)],
            ];
            var steering = adds.Select((a, i) => (SequenceSteering?)new SequenceSteering(a, promptLens[i])).ToArray();
            float[][] steered = ForwardBatch(model, sequences, steering);
            float[][] plain = ForwardBatch(model, sequences);

            var entries = adds.SelectMany((a, row) => a.Select(x => new TorchOracle.SteeringEntry(
                row, x.Layer, x.Multiplier, x.Positions.ToString().ToLowerInvariant(), x.Vector)));
            using var oracle = TorchOracle.Forward(TestModels.Get(shape), sequences, promptLens, steering: entries);
            for (int i = 0; i < sequences.Length; i++)
            {
                float[] expected = TorchOracle.Tensor(oracle, $"logits.{i}");
                Assert.That(Compare.RelativeMaxError(steered[i], expected), Is.LessThanOrEqualTo(Tolerance), $"sequence {i}");
                // The steering must have mattered, or the comparison proves nothing.
                Assert.That(Compare.RelativeMaxError(plain[i], expected), Is.GreaterThan(100 * Tolerance), $"sequence {i} unchanged by steering");
            }
        }
    }
}
