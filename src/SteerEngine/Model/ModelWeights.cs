namespace SteerEngine.Model;

/// <summary>
/// A weight matrix as it lies in the safetensors file: row-major (Rows = out features, Cols = in
/// features), in the file's dtype, memory-mapped. The exact path widens rows to f32 as it reads them.
/// </summary>
public sealed unsafe class WeightMatrix(string name, DType dtype, int rows, int cols, byte* data)
{
    public string Name { get; } = name;
    public DType DType { get; } = dtype;
    public int Rows { get; } = rows;
    public int Cols { get; } = cols;
    public byte* Data { get; } = data;

    /// <summary>
    /// Lets the OS drop this matrix's pages of the mapped file from the process (Linux
    /// madvise DONTNEED; a no-op elsewhere). Reading it again faults them back in from the file, so
    /// nothing changes but the resident size: after packing, the fast path no longer reads them.
    /// </summary>
    public void ReleasePages() => MappedPages.Release(Data, (long)Rows * Cols * DTypes.Size(DType));

    /// <summary>Row <paramref name="row"/> widened exactly to f32. destination: (Cols)</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        long offset = (long)row * Cols;
        switch (DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>((float*)Data + offset, Cols).CopyTo(destination);
                break;
            case DType.BF16:
                BFloat16Convert.ToF32(new ReadOnlySpan<ushort>((ushort*)Data + offset, Cols), destination);
                break;
            case DType.F16:
                var src = new ReadOnlySpan<Half>((Half*)Data + offset, Cols);
                for (int i = 0; i < Cols; i++) destination[i] = (float)src[i];
                break;
        }
    }
}

/// <summary>One decoder block's weights. Norm weights are small and kept as f32 arrays.</summary>
public sealed class LayerWeights
{
    public required float[] InputNorm { get; init; }        // (H)
    public required WeightMatrix Q { get; init; }           // (nh*hd, H)
    public required WeightMatrix K { get; init; }           // (nkv*hd, H)
    public required WeightMatrix V { get; init; }           // (nkv*hd, H)
    public required WeightMatrix O { get; init; }           // (H, nh*hd)
    public float[]? QNorm { get; init; }                    // (hd) Qwen3 only
    public float[]? KNorm { get; init; }                    // (hd) Qwen3 only
    public required float[] PostAttentionNorm { get; init; } // (H)
    public required WeightMatrix Gate { get; init; }        // (I, H)
    public required WeightMatrix Up { get; init; }          // (I, H)
    public required WeightMatrix Down { get; init; }        // (H, I)
}

/// <summary>
/// All weights of a Llama / Qwen3 model, checked tensor by tensor (presence, dtype, shape) against
/// the config. The matrices stay memory-mapped; the store must outlive this object.
/// </summary>
public sealed unsafe class ModelWeights : IDisposable
{
    public required TensorStore Store { get; init; }
    public required WeightMatrix Embedding { get; init; }   // (V, H)
    public required LayerWeights[] Layers { get; init; }
    public required float[] FinalNorm { get; init; }        // (H)
    public required WeightMatrix LmHead { get; init; }      // (V, H), the embedding when tied

    public static ModelWeights Load(TensorStore store, ModelConfig c)
    {
        WeightMatrix Matrix(string name, int rows, int cols)
        {
            TensorInfo t = store.Require(name, rows, cols);
            return new WeightMatrix(name, t.DType, rows, cols, store.DataPointer(t));
        }
        float[] Vector(string name, int n) => store.ReadF32(store.Require(name, n));

        var layers = new LayerWeights[c.NumLayers];
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            bool qwen = c.Arch == ModelArch.Qwen3;
            layers[i] = new LayerWeights
            {
                InputNorm = Vector(p + "input_layernorm.weight", c.HiddenSize),
                Q = Matrix(p + "self_attn.q_proj.weight", c.QDim, c.HiddenSize),
                K = Matrix(p + "self_attn.k_proj.weight", c.KvDim, c.HiddenSize),
                V = Matrix(p + "self_attn.v_proj.weight", c.KvDim, c.HiddenSize),
                O = Matrix(p + "self_attn.o_proj.weight", c.HiddenSize, c.QDim),
                QNorm = qwen ? Vector(p + "self_attn.q_norm.weight", c.HeadDim) : null,
                KNorm = qwen ? Vector(p + "self_attn.k_norm.weight", c.HeadDim) : null,
                PostAttentionNorm = Vector(p + "post_attention_layernorm.weight", c.HiddenSize),
                Gate = Matrix(p + "mlp.gate_proj.weight", c.IntermediateSize, c.HiddenSize),
                Up = Matrix(p + "mlp.up_proj.weight", c.IntermediateSize, c.HiddenSize),
                Down = Matrix(p + "mlp.down_proj.weight", c.HiddenSize, c.IntermediateSize),
            };
        }
        WeightMatrix embedding = Matrix("model.embed_tokens.weight", c.VocabSize, c.HiddenSize);
        WeightMatrix lmHead = c.TieWordEmbeddings && !store.Contains("lm_head.weight")
            ? embedding
            : Matrix("lm_head.weight", c.VocabSize, c.HiddenSize);
        return new ModelWeights
        {
            Store = store,
            Embedding = embedding,
            Layers = layers,
            FinalNorm = Vector("model.norm.weight", c.HiddenSize),
            LmHead = lmHead,
        };
    }

    public void Dispose() => Store.Dispose();
}
