using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda;

// Steering at attn.hook_z, between the attention and o_proj (kernels/attention_steer.cu). Each rank
// holds a contiguous slice of the heads, so an add (elementwise) and any term on one head (which one
// rank holds whole) act on the rank's own columns; a term that needs the whole row (add_normalized or
// a projection over every head) makes its layer gather the rows: each rank's columns into zeroed
// f32 rows, an all-reduce, every term on the whole rows (on every rank alike), and each rank keeps its
// own columns. Layers without attn_z terms launch nothing for it.
public sealed partial class CudaTransformer
{
    /// <summary>The hooks in the order of the plan's steering tables.</summary>
    static readonly SteeringHook[] SteerHooks = [SteeringHook.ResidPost, SteeringHook.ResidMid, SteeringHook.AttnZ];

    /// <summary>The step's steering entries on the device (Plan.SteerStart .. Plan.AttentionVectors).</summary>
    readonly record struct SteerTables(DevicePtr Start, DevicePtr Vector, DevicePtr Multiplier, DevicePtr Op, DevicePtr Bounds,
        DevicePtr Slice, DevicePtr AttentionVectors);

    /// <summary>Whether an attn_z term needs more columns than one rank holds.</summary>
    bool NeedsWholeRows(SteeringAdd term) => _ranks.Length > 1 && term.Head is null && term.Op != SteeringOp.Add;

    /// <summary>att (T, qd) bf16, this rank's heads of each row, steered by the rows' attn_z terms of this layer.</summary>
    void SteerAttention(int rank, Plan p, int layer, DevicePtr att, SteerTables t)
    {
        Rank rk = _ranks[rank];
        CudaDevice d = rk.Device;
        RankShape s = rk.Shape;
        int T = p.Rows, qd = s.QDim, lo = s.Rank * qd, width = Config.QDim;
        bool gathered = p.AttentionGathered[layer];
        DevicePtr rows = rk.Workspace.Get("att_rows", (long)T * width * 4); // (T, nh·hd) f32, or (T, qd) of it
        if (gathered)
        {
            d.Launch("attention_heads_to_rows", new Dim3((uint)T), Threads(width), att, qd, lo, rows, width);
            _collectives!.AllReduceSum(rank, rows, rows, (long)T * width);
        }
        DevicePtr start = t.Start + (long)(2 * Config.NumLayers + layer) * (T + 1) * 4;
        d.Launch("attention_steer", new Dim3((uint)T), Threads(gathered ? width : qd), att, qd, lo, rows,
            gathered ? width : qd, gathered ? 0 : lo, gathered ? 1 : 0,
            start, t.Vector, t.Multiplier, t.Op, t.Bounds, t.Slice, t.AttentionVectors, width);
    }
}
