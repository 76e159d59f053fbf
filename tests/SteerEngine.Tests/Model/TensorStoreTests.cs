using NUnit.Framework;
using SteerEngine.Model;

namespace SteerEngine.Tests.Model;

public class TensorStoreTests
{
    string dir = "";

    [SetUp]
    public void CreateDirectory() => dir = SafetensorsTestFiles.NewTemporaryDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(dir, recursive: true);

    static readonly float[] Values = [1f, -0.5f, 3.140625f, 65504f, -1e-3f, 0f, 1e-7f, 2.5e4f, -7f];

    // Values as bf16, f16 and f32 tensors of shape [3, 3], and what each should widen back to.
    void WriteThreeDtypeModel(long maxShardBytes = 5L << 30)
    {
        var specs = new TensorSpec[] { new("bf16", DType.BF16, [3, 3]), new("f16", DType.F16, [3, 3]), new("f32", DType.F32, [3, 3]) };
        SafetensorsWriter.WriteModel(dir, specs, (spec, stream) =>
        {
            foreach (float v in Values)
            {
                byte[] bytes = spec.DType switch
                {
                    DType.BF16 => BitConverter.GetBytes(BFloat16Convert.FromF32RoundNearestEven(v)),
                    DType.F16 => BitConverter.GetBytes((Half)v),
                    _ => BitConverter.GetBytes(v),
                };
                stream.Write(bytes);
            }
        }, maxShardBytes);
    }

    static float[] Expected(string dtype) => dtype switch
    {
        "bf16" => Values.Select(v => BFloat16Convert.ToF32(BFloat16Convert.FromF32RoundNearestEven(v))).ToArray(),
        "f16" => Values.Select(v => (float)(Half)v).ToArray(),
        _ => Values,
    };

    [TestCase("bf16")]
    [TestCase("f16")]
    [TestCase("f32")]
    public void ReadF32_widens_the_stored_values_exactly(string name)
    {
        WriteThreeDtypeModel();
        using var store = TensorStore.Open(dir);
        var t = store.Require(name, 3, 3);

        Assert.That(store.ReadF32(t), Is.EqualTo(Expected(name)));

        var middle = new float[4];
        store.ReadF32(t, 3, middle);
        Assert.That(middle, Is.EqualTo(Expected(name)[3..7]));
    }

    [Test]
    public void ReadF32_outside_the_tensor_is_refused()
    {
        WriteThreeDtypeModel();
        using var store = TensorStore.Open(dir);
        var t = store.Require("f32", 3, 3);

        Assert.That(() => store.ReadF32(t, 6, new float[4]), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => store.ReadF32(t, -1, new float[1]), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Require_missing_tensor_names_the_file_the_tensor_and_the_expected_shape()
    {
        WriteThreeDtypeModel();
        using var store = TensorStore.Open(dir);

        var e = Assert.Throws<ModelFormatException>(() => store.Require("lm_head.weight", 128, 64));

        Assert.That(e!.Message, Is.EqualTo($"{Path.Combine(dir, "model.safetensors")}: tensor 'lm_head.weight' not found (expected shape [128, 64])"));
    }

    [Test]
    public void Require_wrong_shape_names_the_file_the_tensor_got_and_expected()
    {
        WriteThreeDtypeModel(maxShardBytes: 20);
        using var store = TensorStore.Open(dir);

        var e = Assert.Throws<ModelFormatException>(() => store.Require("f16", 9));

        Assert.That(e!.Message, Is.EqualTo($"{store.Require("f16", 3, 3).File}: tensor 'f16' has shape [3, 3], expected [9]"));
        Assert.That(e.Message, Does.Contain("model-00002-of-00003.safetensors"));
    }

    [Test]
    public void Names_and_contains_reflect_the_tensors_of_every_shard()
    {
        WriteThreeDtypeModel(maxShardBytes: 20);
        using var store = TensorStore.Open(dir);

        Assert.That(store.Names, Is.EquivalentTo(new[] { "bf16", "f16", "f32" }));
        Assert.That(store.Contains("f32"), Is.True);
        Assert.That(store.Contains("F32"), Is.False);
    }

    [Test]
    public void Directory_without_weights_is_rejected()
    {
        var e = Assert.Throws<ModelFormatException>(() => TensorStore.Open(dir));
        Assert.That(e!.Message, Is.EqualTo($"{dir}: neither model.safetensors nor model.safetensors.index.json found"));
    }

    [Test]
    public void Missing_directory_is_rejected()
    {
        string missing = Path.Combine(dir, "nope");
        var e = Assert.Throws<ModelFormatException>(() => TensorStore.Open(missing));
        Assert.That(e!.Message, Is.EqualTo($"{missing}: model directory does not exist"));
    }

    string IndexPath => Path.Combine(dir, TensorStore.IndexFileName);

    [TestCase("{\"weight_map\": {", "index is not valid JSON")]
    [TestCase("{\"weight_map\": {\"\\udc00\": \"x\"}}", "index is not valid JSON (string at byte 16 escapes an unpaired surrogate)")]
    [TestCase("[]", "index is not a JSON object (got Array)")]
    [TestCase("{\"metadata\": {}}", "missing \"weight_map\" object")]
    [TestCase("{\"weight_map\": [\"a\"]}", "missing \"weight_map\" object")]
    [TestCase("{\"weight_map\": {\"a\": 3}}", "weight_map entry for 'a' must be a shard file name, got 3")]
    [TestCase("{\"weight_map\": {\"a\": \"../model.safetensors\"}}", "weight_map entry for 'a' must be a shard file name")]
    [TestCase("{\"weight_map\": {\"a\": \"model-00009-of-00009.safetensors\"}}",
        "weight_map puts tensor 'a' in model-00009-of-00009.safetensors, which does not exist")]
    public void Malformed_index_is_rejected_naming_the_index_file(string index, string problem)
    {
        File.WriteAllText(IndexPath, index);

        var e = Assert.Throws<ModelFormatException>(() => TensorStore.Open(dir));

        Assert.That(e!.Message, Does.StartWith(IndexPath + ": "));
        Assert.That(e.Message, Does.Contain(problem));
    }

    [Test]
    public void Tensor_listed_in_index_but_absent_from_its_shard_is_rejected_naming_the_shard()
    {
        WriteThreeDtypeModel(maxShardBytes: 20);
        string shard = "model-00001-of-00003.safetensors";
        File.WriteAllText(IndexPath, $$$"""{"weight_map": {"bf16": "{{{shard}}}", "f16": "{{{shard}}}"}}""");

        var e = Assert.Throws<ModelFormatException>(() => TensorStore.Open(dir));

        Assert.That(e!.Message, Is.EqualTo($"{Path.Combine(dir, shard)}: tensor 'f16' is listed in model.safetensors.index.json but not in this shard"));
    }

    [Test]
    public void Shard_tensors_the_index_does_not_list_are_ignored()
    {
        WriteThreeDtypeModel(maxShardBytes: 20);
        File.WriteAllText(IndexPath, """{"weight_map": {"f32": "model-00003-of-00003.safetensors"}}""");

        using var store = TensorStore.Open(dir);

        Assert.That(store.Names, Is.EqualTo(new[] { "f32" }));
        Assert.That(store.ReadF32(store.Require("f32", 3, 3)), Is.EqualTo(Values));
    }

    [Test]
    public void Malformed_shard_is_reported_with_the_shard_path()
    {
        WriteThreeDtypeModel(maxShardBytes: 20);
        string shard = Path.Combine(dir, "model-00002-of-00003.safetensors");
        File.WriteAllBytes(shard, new byte[3]);

        var e = Assert.Throws<ModelFormatException>(() => TensorStore.Open(dir));

        Assert.That(e!.Message, Does.StartWith(shard + ": file is 3 bytes"));
    }
}
