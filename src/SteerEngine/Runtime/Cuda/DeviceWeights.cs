using SteerEngine.Model;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// The shapes one rank of a tensor-parallel group holds: its share of the attention heads
/// (whole KV groups), of the MLP's intermediate features and of the vocabulary.
/// </summary>
public sealed record RankShape(int Rank, int Ranks, int Heads, int KvHeads, int HeadDim, int Intermediate, int VocabSlice)
{
    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;
    public int QkvDim => QDim + 2 * KvDim;

    public static RankShape For(ModelConfig c, int rank, int ranks)
    {
        if (c.NumKvHeads % ranks != 0)
            throw new ArgumentException($"tensor parallelism {ranks} does not divide the model's {c.NumKvHeads} KV heads");
        if (c.IntermediateSize % ranks != 0)
            throw new ArgumentException($"tensor parallelism {ranks} does not divide the model's intermediate size {c.IntermediateSize}");
        return new RankShape(rank, ranks, c.NumHeads / ranks, c.NumKvHeads / ranks, c.HeadDim, c.IntermediateSize / ranks,
            (c.VocabSize + ranks - 1) / ranks);
    }
}

/// <summary>One decoder block's weights on one rank. Matrices bf16 (out, in) row-major, norms f32.</summary>
public sealed class DeviceLayer
{
    public required DevicePtr InputNorm { get; init; }  // (H)
    public required DevicePtr Qkv { get; init; }        // (qd + 2·kvd, H): this rank's Q heads, then K, then V (column-parallel)
    public required DevicePtr QNorm { get; init; }      // (hd) or null
    public required DevicePtr KNorm { get; init; }      // (hd) or null
    public required DevicePtr O { get; init; }          // (H, qd): the columns of this rank's heads (row-parallel)
    public required DevicePtr PostNorm { get; init; }   // (H)
    public required DevicePtr GateUp { get; init; }     // (2·I_rank, H): gate rows, then up rows (column-parallel)
    public required DevicePtr Down { get; init; }       // (H, I_rank) (row-parallel)
}

/// <summary>All weights of one rank, uploaded as bf16 (converted from f32/f16 files by rounding to nearest even).</summary>
public sealed class DeviceWeights
{
    public required DevicePtr Embedding { get; init; }  // (V, H), replicated
    public required DeviceLayer[] Layers { get; init; }
    public required DevicePtr FinalNorm { get; init; }  // (H)
    public required DevicePtr LmHead { get; init; }     // (VocabSlice, H): rows rank·VocabSlice.., zero-padded (vocab-parallel)
    public required DevicePtr InvFreq { get; init; }    // (hd/2) RoPE inverse frequencies, llama3 scaling applied

    public static DeviceWeights Upload(CudaDevice d, ModelConfig c, ModelWeights w, RankShape s)
    {
        int H = c.HiddenSize, hd = c.HeadDim;
        var layers = new DeviceLayer[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            LayerWeights lw = w.Layers[l];
            var qkv = new ushort[(long)s.QkvDim * H];
            Bf16Block(lw.Q, s.Rank * s.QDim, s.QDim, 0, H, qkv, 0);
            Bf16Block(lw.K, s.Rank * s.KvDim, s.KvDim, 0, H, qkv, (long)s.QDim * H);
            Bf16Block(lw.V, s.Rank * s.KvDim, s.KvDim, 0, H, qkv, (long)(s.QDim + s.KvDim) * H);
            var o = new ushort[(long)H * s.QDim];
            Bf16Block(lw.O, 0, H, s.Rank * s.QDim, s.QDim, o, 0);
            var gateUp = new ushort[2L * s.Intermediate * H];
            Bf16Block(lw.Gate, s.Rank * s.Intermediate, s.Intermediate, 0, H, gateUp, 0);
            Bf16Block(lw.Up, s.Rank * s.Intermediate, s.Intermediate, 0, H, gateUp, (long)s.Intermediate * H);
            var down = new ushort[(long)H * s.Intermediate];
            Bf16Block(lw.Down, 0, H, s.Rank * s.Intermediate, s.Intermediate, down, 0);
            layers[l] = new DeviceLayer
            {
                InputNorm = d.AllocUpload<float>(lw.InputNorm),
                Qkv = d.AllocUpload<ushort>(qkv),
                QNorm = lw.QNorm is null ? DevicePtr.Null : d.AllocUpload<float>(lw.QNorm),
                KNorm = lw.KNorm is null ? DevicePtr.Null : d.AllocUpload<float>(lw.KNorm),
                O = d.AllocUpload<ushort>(o),
                PostNorm = d.AllocUpload<float>(lw.PostAttentionNorm),
                GateUp = d.AllocUpload<ushort>(gateUp),
                Down = d.AllocUpload<ushort>(down),
            };
        }
        var embedding = new ushort[(long)c.VocabSize * H];
        Bf16Block(w.Embedding, 0, c.VocabSize, 0, H, embedding, 0);
        var lmHead = new ushort[(long)s.VocabSlice * H];
        int first = s.Rank * s.VocabSlice, rows = Math.Max(0, Math.Min(s.VocabSlice, c.VocabSize - first));
        Bf16Block(w.LmHead, first, rows, 0, H, lmHead, 0);
        return new DeviceWeights
        {
            Embedding = d.AllocUpload<ushort>(embedding),
            Layers = layers,
            FinalNorm = d.AllocUpload<float>(w.FinalNorm),
            LmHead = d.AllocUpload<ushort>(lmHead),
            InvFreq = d.AllocUpload<float>(Cpu.Rope.InverseFrequencies(hd, c.RopeTheta, c.RopeScaling)),
        };
    }

    /// <summary>Rows [row0, row0+rows) × columns [col0, col0+cols) of w, as bf16, into dst at offset (rows, cols).</summary>
    static unsafe void Bf16Block(WeightMatrix w, int row0, int rows, int col0, int cols, ushort[] dst, long offset)
    {
        var f32 = w.DType == DType.BF16 ? null : new float[w.Cols];
        for (int r = 0; r < rows; r++)
        {
            Span<ushort> to = dst.AsSpan((int)(offset + (long)r * cols), cols);
            if (w.DType == DType.BF16)
                new ReadOnlySpan<ushort>((ushort*)w.Data + (long)(row0 + r) * w.Cols + col0, cols).CopyTo(to);
            else
            {
                w.ReadRow(row0 + r, f32);
                for (int i = 0; i < cols; i++) to[i] = ToBf16(f32![col0 + i]);
            }
        }
    }

    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
        return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }

    public static float FromBf16(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);
}
