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

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Steering_ops_and_position_modes_match_torch_hooks_in_one_mixed_batch(string shape) =>
        SteeringChecks.MatchOracle(shape, Sequences(), PromptLens, c => Terms(c.HiddenSize, 1));

    [Test]
    public void Fast_paths_apply_the_steering_ops_as_the_exact_path_does([Values("tiny", "qwen3-tiny")] string shape,
        [ValueSource(typeof(FastPathTests), nameof(FastPathTests.FastChoices))] CpuKernelChoice kernels) =>
        SteeringChecks.FastMatchesExact(shape, kernels, Sequences(), PromptLens, c => Terms(c.HiddenSize, 0));
}
