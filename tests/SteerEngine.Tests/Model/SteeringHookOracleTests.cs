using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

/// <summary>
/// Every steering operation and position mode at the hook points other than the block output
/// (hook_resid_mid, attn.hook_z over all heads, attn.hook_z of one head) against PyTorch forward hooks
/// at the same points, in one batch that mixes them with each other, with terms at the block output
/// and with an unsteered row; then the fast kernels against the exact path on that batch.
/// </summary>
[TestFixture]
public class SteeringHookOracleTests
{
    static readonly int[] Lengths = [5, 23, 71, 9, 14, 20];
    static readonly int[] PromptLens = [3, 15, 40, 6, 9, 12];

    /// <summary>Six rows per hook under test, then a plain add at the block output, then an unsteered row.</summary>
    static int[][] Sequences()
    {
        var rng = new Random(43);
        return Enumerable.Range(0, 3 * Lengths.Length + 2).Select(i => Compare.RandomTokens(rng, Lengths[i % Lengths.Length], 128000)).ToArray();
    }

    static int PromptLen(int row) => PromptLens[row % PromptLens.Length];

    /// <summary>The hooks under test as (hook, head): attn_z with a head steers one head's slice.</summary>
    static readonly (SteeringHook Hook, int? Head)[] Hooks = [(SteeringHook.ResidMid, null), (SteeringHook.AttnZ, null), (SteeringHook.AttnZ, 1)];

    static SteeringAdd[][] Terms(ModelConfig c, int layer)
    {
        var post = new SteeringAdd(layer, Compare.RandomVector(new Random(5), c.HiddenSize), 4f);
        return [.. Hooks.SelectMany(h => Terms(c, h.Hook, h.Head, layer)), [post], []];
    }

    /// <summary>
    /// Six rows that put each op and each position mode at one hook (row i: op i mod 5, mode i);
    /// rows 0, 2 and 4 also carry a term at another hook of the same block or at the block output.
    /// </summary>
    static SteeringAdd[][] Terms(ModelConfig c, SteeringHook hook, int? h, int layer)
    {
        var rng = new Random(11 + (int)hook + (h ?? 7));
        int width = hook == SteeringHook.AttnZ ? (h is null ? c.QDim : c.HeadDim) : c.HiddenSize;
        SteeringAdd At(int i, SteeringPositions positions)
        {
            var op = (SteeringOp)(i % 5);
            return new SteeringAdd(layer, Compare.RandomVector(rng, width), op == SteeringOp.Add ? 4f : 6f, positions)
            {
                Op = op, Hook = hook, Head = h,
                Lo = 2f, Hi = 3f, Value = -3f,
                FirstK = positions == SteeringPositions.FirstK ? 4 : 0,
                TokenPositions = positions == SteeringPositions.Tokens ? [1, 3, 10, 17] : null,
            };
        }
        SteeringHook other = hook == SteeringHook.ResidMid ? SteeringHook.AttnZ : SteeringHook.ResidMid;
        var post = new SteeringAdd(layer, Compare.RandomVector(rng, c.HiddenSize), 4f);
        SteeringAdd Other(SteeringOp op) => new(layer, Compare.RandomVector(rng, other == SteeringHook.AttnZ ? c.QDim : c.HiddenSize), 3f)
        { Op = op, Hook = other, Lo = -0.25f, Hi = 0.25f };
        return
        [
            [At(0, SteeringPositions.All), Other(SteeringOp.Add), post],
            [At(1, SteeringPositions.Prompt)],
            [Other(SteeringOp.Cap), At(2, SteeringPositions.Response)],
            [At(3, SteeringPositions.LastPrompt)],
            [At(4, SteeringPositions.FirstK), At(0, SteeringPositions.FirstK) with { Layer = layer + 1 }, post with { Op = SteeringOp.Ablate }],
            [At(5, SteeringPositions.Tokens)],
        ];
    }

    static int[] PromptLensOfRows() => Enumerable.Range(0, 3 * Lengths.Length + 2).Select(PromptLen).ToArray();

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Ops_and_position_modes_at_each_hook_match_torch_hooks_in_one_mixed_batch(string shape) =>
        SteeringChecks.MatchOracle(shape, Sequences(), PromptLensOfRows(), c => Terms(c, 1));

    [Test]
    public void Fast_paths_apply_each_hook_as_the_exact_path_does([Values("tiny", "qwen3-tiny")] string shape,
        [ValueSource(typeof(FastPathTests), nameof(FastPathTests.FastChoices))] CpuKernelChoice kernels) =>
        SteeringChecks.FastMatchesExact(shape, kernels, Sequences(), PromptLensOfRows(), c => Terms(c, 0));
}
