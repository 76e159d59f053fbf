using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Tests.Support;

/// <summary>
/// The two checks every steering oracle test makes on a mixed batch (row i of <c>terms</c> steers
/// sequence i; an empty row is unsteered): the model against PyTorch forward hooks, and a fast kernel
/// set against the exact path. Each also checks the steering changed every steered row enough to tell.
/// </summary>
static class SteeringChecks
{
    const double OracleTolerance = 1e-4;

    public static SequenceSteering?[] Steering(SteeringAdd[][] terms, int[] promptLens) =>
        terms.Select((t, i) => t.Length == 0 ? null : new SequenceSteering(t, promptLens[i])).ToArray();

    public static float[][] Forward(Transformer model, int[][] sequences, SequenceSteering?[] steering) =>
        model.Forward(sequences.Select((s, i) => new ForwardSequence(model.NewCache(), s, steering[i], allLogits: true)).ToList());

    public static TorchOracle.SteeringEntry Entry(int row, SteeringAdd a) => new(row, a.Layer, a.Multiplier, a.Positions.Name(), a.Vector,
        a.Op.Name(),
        lo: a.Op == SteeringOp.Cap && float.IsFinite(a.Lo) ? a.Lo : null,
        hi: a.Op == SteeringOp.Cap && float.IsFinite(a.Hi) ? a.Hi : null,
        value: a.Op == SteeringOp.Set ? a.Value : null,
        k: a.Positions == SteeringPositions.FirstK ? a.FirstK : null,
        tokens: a.TokenPositions,
        hook: a.Hook == SteeringHook.ResidPost ? null : a.Hook.Name(), head: a.Head);

    public static void MatchOracle(string shape, int[][] sequences, int[] promptLens, Func<ModelConfig, SteeringAdd[][]> termsOf)
    {
        using var model = Transformer.Load(TestModels.Get(shape));
        SteeringAdd[][] terms = termsOf(model.Config);
        float[][] steered = Forward(model, sequences, Steering(terms, promptLens));
        float[][] plain = Forward(model, sequences, new SequenceSteering?[sequences.Length]);

        var entries = terms.SelectMany((t, row) => t.Select(a => Entry(row, a)));
        using var oracle = TorchOracle.Forward(TestModels.Get(shape), sequences, promptLens, steering: entries);
        for (int i = 0; i < sequences.Length; i++)
        {
            float[] expected = TorchOracle.Tensor(oracle, $"logits.{i}");
            Assert.That(Compare.RelativeMaxError(steered[i], expected), Is.LessThanOrEqualTo(OracleTolerance), $"sequence {i}");
            // Each steered row must differ from the plain one, or the comparison proves nothing; the unsteered row must not.
            double change = Compare.RelativeMaxError(plain[i], expected);
            if (terms[i].Length > 0) Assert.That(change, Is.GreaterThan(100 * OracleTolerance), $"sequence {i} unchanged by steering");
            else Assert.That(change, Is.LessThanOrEqualTo(OracleTolerance), $"unsteered sequence {i}");
        }
    }

    public static void FastMatchesExact(string shape, CpuKernelChoice kernels, int[][] sequences, int[] promptLens, Func<ModelConfig, SteeringAdd[][]> terms)
    {
        string dir = TestModels.Get(shape);
        using var exact = Transformer.Load(dir, CpuKernelChoice.Exact);
        using var fast = Transformer.Load(dir, kernels);
        SequenceSteering?[] steering = Steering(terms(exact.Config), promptLens);
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
