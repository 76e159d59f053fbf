using System.Text.Json.Nodes;
using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

/// <summary>Bad model directories: each gets one line naming the file and the problem, never a crash or a silent load.</summary>
[TestFixture]
public class ModelLoadingTests
{
    static JsonObject MicroConfig() => new()
    {
        ["model_type"] = "llama", ["hidden_size"] = 16, ["intermediate_size"] = 24, ["num_hidden_layers"] = 2,
        ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["vocab_size"] = 50, ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false,
    };

    static List<TensorSpec> MicroTensors(ModelConfig c)
    {
        var specs = new List<TensorSpec> { new("model.embed_tokens.weight", DType.BF16, [c.VocabSize, c.HiddenSize]) };
        for (int i = 0; i < c.NumLayers; i++)
        {
            string p = $"model.layers.{i}.";
            specs.Add(new(p + "input_layernorm.weight", DType.F32, [c.HiddenSize]));
            specs.Add(new(p + "self_attn.q_proj.weight", DType.BF16, [c.QDim, c.HiddenSize]));
            specs.Add(new(p + "self_attn.k_proj.weight", DType.BF16, [c.KvDim, c.HiddenSize]));
            specs.Add(new(p + "self_attn.v_proj.weight", DType.BF16, [c.KvDim, c.HiddenSize]));
            specs.Add(new(p + "self_attn.o_proj.weight", DType.BF16, [c.HiddenSize, c.QDim]));
            specs.Add(new(p + "post_attention_layernorm.weight", DType.F32, [c.HiddenSize]));
            specs.Add(new(p + "mlp.gate_proj.weight", DType.BF16, [c.IntermediateSize, c.HiddenSize]));
            specs.Add(new(p + "mlp.up_proj.weight", DType.BF16, [c.IntermediateSize, c.HiddenSize]));
            specs.Add(new(p + "mlp.down_proj.weight", DType.BF16, [c.HiddenSize, c.IntermediateSize]));
        }
        specs.Add(new("model.norm.weight", DType.F32, [c.HiddenSize]));
        specs.Add(new("lm_head.weight", DType.BF16, [c.VocabSize, c.HiddenSize]));
        return specs;
    }

    /// <summary>Writes a micro model, letting the test edit the config and the tensor list first.</summary>
    static string Write(Action<JsonObject>? editConfig = null, Func<List<TensorSpec>, List<TensorSpec>>? editTensors = null)
    {
        string dir = TestModels.TempDir("bad-model");
        JsonObject json = MicroConfig();
        ModelConfig config = ModelConfig.Parse(json.ToJsonString(), "micro");
        editConfig?.Invoke(json);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        var specs = MicroTensors(config);
        if (editTensors is not null) specs = editTensors(specs);
        SafetensorsWriter.WriteModel(dir, specs, (s, stream) => stream.Write(new byte[s.ByteLength]));
        return dir;
    }

    static void AssertLoadFails(string dir, params string[] fragments)
    {
        var e = Assert.Throws<ModelFormatException>(() => Transformer.Load(dir).Dispose())!;
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
        foreach (string f in fragments) Assert.That(e.Message, Does.Contain(f));
    }

    [Test]
    public void A_well_formed_micro_model_loads()
    {
        using var model = Transformer.Load(Write());
        Assert.That(model.Config.HeadDim, Is.EqualTo(4));
    }

    [Test]
    public void Missing_config_json_is_named() =>
        AssertLoadFails(TestModels.TempDir("empty"), "config.json", "not found");

    [Test]
    public void Config_missing_a_field_names_the_field() =>
        AssertLoadFails(Write(c => c.Remove("hidden_size")), "config.json", "missing field 'hidden_size'");

    [Test]
    public void Config_field_of_the_wrong_type_names_the_field_and_value() =>
        AssertLoadFails(Write(c => c["num_hidden_layers"] = "two"), "num_hidden_layers", "positive integer", "\"two\"");

    [Test]
    public void Unsupported_model_type_is_named() =>
        AssertLoadFails(Write(c => c["model_type"] = "gpt2"), "model_type 'gpt2'", "llama");

    [Test]
    public void Unsupported_rope_scaling_is_named() =>
        AssertLoadFails(Write(c => c["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 }), "rope_scaling type 'yarn'");

    [Test]
    public void Heads_not_a_multiple_of_kv_heads_is_rejected() =>
        AssertLoadFails(Write(c => c["num_key_value_heads"] = 3), "not a multiple of num_key_value_heads 3");

    [Test]
    public void Config_that_is_not_json_is_rejected()
    {
        string dir = Write();
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"llama\",");
        AssertLoadFails(dir, "config.json", "not valid JSON");
    }

    [Test]
    public void Missing_tensor_is_named() =>
        AssertLoadFails(Write(editTensors: s => s.Where(t => t.Name != "model.layers.1.mlp.up_proj.weight").ToList()),
            "model.layers.1.mlp.up_proj.weight");

    [Test]
    public void Tensor_of_the_wrong_shape_names_both_shapes() =>
        AssertLoadFails(Write(editTensors: s => s.Select(t => t.Name == "model.layers.0.self_attn.k_proj.weight"
                ? new TensorSpec(t.Name, t.DType, [16, 16]) : t).ToList()),
            "model.layers.0.self_attn.k_proj.weight", "16", "8");

    [Test]
    public void Truncated_weights_file_is_rejected()
    {
        string dir = Write();
        string file = Path.Combine(dir, "model.safetensors");
        using (var f = File.Open(file, FileMode.Open)) f.SetLength(f.Length - 100);
        AssertLoadFails(dir, "model.safetensors");
    }

    [Test]
    public void Directory_without_weights_is_rejected()
    {
        string dir = Write();
        File.Delete(Path.Combine(dir, "model.safetensors"));
        AssertLoadFails(dir, dir);
    }

    [Test]
    public void Tied_embeddings_load_without_lm_head()
    {
        using var model = Transformer.Load(Write(c => c["tie_word_embeddings"] = true,
            s => s.Where(t => t.Name != "lm_head.weight").ToList()));
        Assert.That(model.Weights.LmHead, Is.SameAs(model.Weights.Embedding));
    }

    [Test]
    public void Untied_model_without_lm_head_is_rejected() =>
        AssertLoadFails(Write(editTensors: s => s.Where(t => t.Name != "lm_head.weight").ToList()), "lm_head.weight");
}
