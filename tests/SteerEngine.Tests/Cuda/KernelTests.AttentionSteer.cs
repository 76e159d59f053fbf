using SteerEngine.Runtime.Cpu;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

// Steering at attn_z (kernels/attention_steer.cu) against the CPU reference on the bf16 attention
// output: on one rank, and on two ranks that each hold half the heads, with the rows gathered
// (as the all-reduce would) or, for terms one rank can apply alone, on each rank's own heads.
public partial class KernelTests
{
    const int SteerHeads = 6, SteerHeadDim = 20, SteerWidth = SteerHeads * SteerHeadDim;

    /// <summary>att (T, nh·hd) bf16 of two ranks' halves, after each rank's attention_steer.</summary>
    float[] SteerAttentionOnRanks(float[] att, SequenceSteering?[] rows, float[][] vectors, int ranks, bool gathered)
    {
        int T = rows.Length, qd = SteerWidth / ranks;
        var e = SteeringEntries(rows, vectors);
        var block = new float[vectors.Length * SteerWidth];
        for (int i = 0; i < vectors.Length; i++) vectors[i].CopyTo(block, i * SteerWidth);
        DevicePtr[] tables = [Up(e.Start), Up(e.Vector), Up(e.Multiplier), Up(e.Op), Up(e.Bounds), Up(e.Slice), Up(block)];

        // Each rank's heads of every row, and (gathered) the whole rows the all-reduce would give every rank.
        var slices = new DevicePtr[ranks];
        var whole = new float[T * SteerWidth];
        for (int k = 0; k < ranks; k++)
        {
            var part = new float[T * qd];
            for (int r = 0; r < T; r++) att.AsSpan(r * SteerWidth + k * qd, qd).CopyTo(part.AsSpan(r * qd));
            slices[k] = Up(Bf16(part));
            DevicePtr own = Zeros(T * SteerWidth * 4);
            _d.Launch("attention_heads_to_rows", new Dim3((uint)T), new Dim3(64), slices[k], qd, k * qd, own, SteerWidth);
            float[] got = Down<float>(own, T * SteerWidth);
            for (int i = 0; i < got.Length; i++) whole[i] += got[i];
        }
        var result = new float[T * SteerWidth];
        for (int k = 0; k < ranks; k++)
        {
            int lo = k * qd;
            DevicePtr rowsBuffer = gathered ? Up(whole) : Zeros(T * qd * 4);
            _d.Launch("attention_steer", new Dim3((uint)T), new Dim3(64), slices[k], qd, lo, rowsBuffer, gathered ? SteerWidth : qd,
                gathered ? 0 : lo, gathered ? 1 : 0, tables[0], tables[1], tables[2], tables[3], tables[4], tables[5], tables[6], SteerWidth);
            float[] part = F32(Down<ushort>(slices[k], T * qd));
            for (int r = 0; r < T; r++) part.AsSpan(r * qd, qd).CopyTo(result.AsSpan(r * SteerWidth + lo));
        }
        return result;
    }

    [TestCase(1, false)]
    [TestCase(2, true)]
    [TestCase(2, false)]
    public void Attention_steer_applies_whole_row_and_head_terms_as_the_cpu_reference(int ranks, bool gathered)
    {
        const int T = 6;
        float[] att = RoundBf16(Random(T * SteerWidth)), v0 = Random(SteerWidth, 0.5f), v1 = Random(SteerWidth, 0.3f), w = Random(SteerHeadDim);
        float[][] vectors = [v0, v1, w];
        SequenceSteering Row(params SteeringAdd[] adds) => new(adds, 1);
        SteeringAdd Z(float[] v, float m, SteeringOp op = SteeringOp.Add, int? head = null) =>
            new(0, v, m) { Op = op, Hook = SteeringHook.AttnZ, Head = head, Lo = -0.5f, Hi = 0.5f, Value = 2f };
        // Terms on one head (on either rank when there are two) and adds, which a rank applies to its
        // own heads; then the whole-row operations, which need the gathered rows under two ranks.
        SequenceSteering?[] rows =
        [
            Row(Z(v0, 3f), Z(w, 0f, SteeringOp.Ablate, head: 4)),
            Row(Z(w, 0f, SteeringOp.Set, head: 1), Z(v1, -2f), Z(w, 0f, SteeringOp.Cap, head: 5)),
            null,
            Row(Z(w, 4f, SteeringOp.AddNormalized, head: 2)),
            Row(Z(v0, 4f, SteeringOp.AddNormalized), Z(w, 0f, SteeringOp.Set, head: 3)),
            Row(Z(v1, 0f, SteeringOp.Ablate), Z(w, 2f, head: 0), Z(v0, 0f, SteeringOp.Cap), Z(v1, 0f, SteeringOp.Set)),
        ];
        if (ranks > 1 && !gathered) rows = [.. rows.Take(4)];
        int n = rows.Length * SteerWidth;

        float[] want = att[..n];
        ResidualAdd.ForwardSteered(want, default, SteerWidth, 0, SteeringHook.AttnZ, rows, new int[rows.Length]);
        want = RoundBf16(want);
        float[] got = SteerAttentionOnRanks(att[..n], rows, vectors, ranks, gathered);
        for (int r = 0; r < rows.Length; r++)
        {
            Range row = (r * SteerWidth)..((r + 1) * SteerWidth);
            Assert.That(Compare.RelativeMaxError(got[row], want[row]), Is.LessThan(8e-3), $"row {r}");
            if (rows[r] is null) Assert.That(got[row], Is.EqualTo(att[row]), "the unsteered row keeps its bits");
            else Assert.That(Compare.RelativeMaxError(att[row], want[row]), Is.GreaterThan(0.05), $"row {r} is steered");
        }
    }
}
