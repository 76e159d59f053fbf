using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

/// <summary>
/// Every steering operation and position mode against PyTorch forward hooks at the block output, in
/// one batch that mixes them with plain adds and an unsteered row; then the fast kernels against the
/// exact path on the same batch.
/// </summary>
[TestFixture]
public class SteeringOpOracleTests
{
    const double Tolerance = 1e-4;
    static readonly int[] PromptLens = [3, 15, 40, 6];

    static int[][] Sequences()
    {
        var rng = new Random(41);
        return [Compare.RandomTokens(rng, 5, 128000), Compare.RandomTokens(rng, 23, 128000), Compare.RandomTokens(rng, 71, 128000), Compare.RandomTokens(rng, 9, 128000)];
    }

    /// <summary>Per row its terms; the last row is unsteered. Every op and position mode appears, two terms per row at one layer compose.</summary>
    static SteeringAdd[][] Terms(int hidden, int layer)
    {
        var rng = new Random(7);
        float[] v1 = Compare.RandomVector(rng, hidden), v2 = Compare.RandomVector(rng, hidden);
        return
        [
            [new SteeringAdd(layer, v1, 0f) { Op = SteeringOp.Ablate }, new SteeringAdd(layer, v2, 6f, SteeringPositions.LastPrompt)],
            [new SteeringAdd(layer, v1, 0f, SteeringPositions.Prompt) { Op = SteeringOp.Cap, Lo = -0.05f, Hi = 0.05f },
             new SteeringAdd(layer + 1, v2, 8f, SteeringPositions.FirstK) { Op = SteeringOp.AddNormalized, FirstK = 4 }],
            [new SteeringAdd(layer, v2, 0f, SteeringPositions.Response) { Op = SteeringOp.Set, Value = 4f },
             new SteeringAdd(layer, v1, 5f, SteeringPositions.Tokens) { TokenPositions = [2, 17, 39, 60] }],
            [],
        ];
    }

    static SequenceSteering?[] Steering(SteeringAdd[][] terms) =>
        terms.Select((t, i) => t.Length == 0 ? null : new SequenceSteering(t, PromptLens[i])).ToArray();

    static float[][] Forward(Transformer model, int[][] sequences, SequenceSteering?[] steering) =>
        model.Forward(sequences.Select((s, i) => new ForwardSequence(model.NewCache(), s, steering[i], allLogits: true)).ToList());

    static TorchOracle.SteeringEntry Entry(int row, SteeringAdd a) => new(row, a.Layer, a.Multiplier, a.Positions.Name(), a.Vector,
        a.Op.Name(),
        lo: a.Op == SteeringOp.Cap && float.IsFinite(a.Lo) ? a.Lo : null,
        hi: a.Op == SteeringOp.Cap && float.IsFinite(a.Hi) ? a.Hi : null,
        value: a.Op == SteeringOp.Set ? a.Value : null,
        k: a.Positions == SteeringPositions.FirstK ? a.FirstK : null,
        tokens: a.TokenPositions);

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Steering_ops_and_position_modes_match_torch_hooks_in_one_mixed_batch(string shape)
    {
        using var model = Transformer.Load(TestModels.Get(shape));
        int[][] sequences = Sequences();
        SteeringAdd[][] terms = Terms(model.Config.HiddenSize, 1);
        float[][] steered = Forward(model, sequences, Steering(terms));
        float[][] plain = Forward(model, sequences, new SequenceSteering?[sequences.Length]);

        var entries = terms.SelectMany((t, row) => t.Select(a => Entry(row, a)));
        using var oracle = TorchOracle.Forward(TestModels.Get(shape), sequences, PromptLens, steering: entries);
        for (int i = 0; i < sequences.Length; i++)
        {
            float[] expected = TorchOracle.Tensor(oracle, $"logits.{i}");
            Assert.That(Compare.RelativeMaxError(steered[i], expected), Is.LessThanOrEqualTo(Tolerance), $"sequence {i}");
            // Each steered row must differ from the plain one, or the comparison proves nothing; the unsteered row must not.
            double change = Compare.RelativeMaxError(plain[i], expected);
            if (terms[i].Length > 0) Assert.That(change, Is.GreaterThan(100 * Tolerance), $"sequence {i} unchanged by steering");
            else Assert.That(change, Is.LessThanOrEqualTo(Tolerance), $"unsteered sequence {i}");
        }
    }

    [Test]
    public void Fast_paths_apply_the_steering_ops_as_the_exact_path_does([Values("tiny", "qwen3-tiny")] string shape,
        [ValueSource(typeof(FastPathTests), nameof(FastPathTests.FastChoices))] CpuKernelChoice kernels)
    {
        string dir = TestModels.Get(shape);
        using var exact = Transformer.Load(dir, CpuKernelChoice.Exact);
        using var fast = Transformer.Load(dir, kernels);
        int[][] sequences = Sequences();
        SequenceSteering?[] steering = Steering(Terms(exact.Config.HiddenSize, 0));
        float[][] a = Forward(exact, sequences, steering), b = Forward(fast, sequences, steering);
        float[][] unsteered = Forward(fast, sequences, new SequenceSteering?[sequences.Length]);
        for (int i = 0; i < sequences.Length; i++)
        {
            Assert.That(Compare.RelativeMaxError(b[i], a[i]), Is.LessThanOrEqualTo(2e-2), $"sequence {i} on {fast.Kernels}");
            if (steering[i] is not null)
                Assert.That(Compare.RelativeMaxError(unsteered[i], a[i]), Is.GreaterThan(5e-2), $"sequence {i}: steering too weak to tell");
        }
    }
}
