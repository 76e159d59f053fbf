using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Model;

public sealed partial class Transformer
{
    /// <summary>
    /// The batch's steering in both shapes the kernels take: per row (exact path) and, per layer and
    /// hook point, flat offsets into (vector index, multiplier, op) terms over one block of distinct
    /// vectors (fast path). The residual hooks' vectors are hidden wide; attn_z's live in their own
    /// block of rows nh·hd wide (a one-head vector fills the first head_dim of its row).
    /// </summary>
    sealed class BatchSteering
    {
        static readonly int HookCount = Enum.GetValues<SteeringHook>().Length;

        readonly VectorBlock _residual, _attention;
        readonly bool[] _used = [];  // (layers, hooks): whether any row has a term there

        /// <param name="residualScratch">the blocks of distinct vectors kept across passes (grown here as needed)</param>
        public BatchSteering(SequenceSteering?[] ofRow, int[] positionOfRow, ModelConfig c, ref float[] residualScratch, ref float[] attentionScratch)
        {
            OfRow = ofRow;
            PositionOfRow = positionOfRow;
            _residual = new VectorBlock(c.HiddenSize);
            _attention = new VectorBlock(c.QDim);
            foreach (SequenceSteering? s in ofRow.Distinct())
                if (s is not null)
                    foreach (SteeringAdd a in s.Adds)
                    {
                        BlockOf(a.Hook).Index.TryAdd(a.Vector, BlockOf(a.Hook).Index.Count);
                        if (_used.Length == 0) _used = new bool[c.NumLayers * HookCount];
                        _used[a.Layer * HookCount + (int)a.Hook] = true;
                    }
            Any = _used.Length > 0;
            _residual.Fill(ref residualScratch);
            _attention.Fill(ref attentionScratch);
        }

        public SequenceSteering?[] OfRow { get; }
        public int[] PositionOfRow { get; }
        public bool Any { get; }

        /// <summary>Whether some row of the batch has a term at this layer and hook (at any position).</summary>
        public bool Uses(int layer, SteeringHook hook) => Any && _used[layer * HookCount + (int)hook];

        VectorBlock BlockOf(SteeringHook hook) => hook == SteeringHook.AttnZ ? _attention : _residual;

        public RowSteering ForLayer(int layer, SteeringHook hook)
        {
            VectorBlock block = BlockOf(hook);
            var rowAdds = new int[OfRow.Length + 1];
            var adds = new List<SteerAdd>();
            for (int r = 0; r < OfRow.Length; r++)
            {
                rowAdds[r] = adds.Count;
                if (OfRow[r] is not { } s) continue;
                foreach (SteeringAdd a in s.Adds)
                    if (a.Layer == layer && a.Hook == hook && a.AppliesAt(PositionOfRow[r], s.PromptLength))
                    {
                        (float lo, float hi) = a.ProjectionBounds;
                        (int offset, int count) = a.Slice;
                        adds.Add(new SteerAdd(block.Index[a.Vector], a.Multiplier, a.Op, lo, hi, offset, count == block.Width ? 0 : count));
                    }
            }
            rowAdds[^1] = adds.Count;
            return new RowSteering(rowAdds, adds.ToArray(), block.Vectors);
        }

        /// <summary>Distinct vectors of one row width, each copied once into a (count, width) block.</summary>
        sealed class VectorBlock(int width)
        {
            public int Width { get; } = width;
            public Dictionary<float[], int> Index { get; } = new(ReferenceEqualityComparer.Instance);
            float[] _block = [];

            public ReadOnlySpan<float> Vectors => _block.AsSpan(0, Index.Count * Width);

            public void Fill(ref float[] scratch)
            {
                if (Index.Count == 0) return;
                if (scratch.Length < Index.Count * Width) scratch = new float[Index.Count * Width];
                _block = scratch;
                foreach (var (vector, i) in Index) vector.CopyTo(_block, i * Width);
            }
        }
    }
}
