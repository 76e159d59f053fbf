using System.Text.Json;
using NUnit.Framework;
using SteerEngine.Model;

namespace SteerEngine.Tests.Model;

public class SafetensorsWriterTests
{
    string dir = "";

    [SetUp]
    public void CreateDirectory() => dir = SafetensorsTestFiles.NewTemporaryDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(dir, recursive: true);

    static readonly TensorSpec[] MixedSpecs =
    [
        new("model.embed_tokens.weight", DType.BF16, [3, 5, 7]),
        new("scale", DType.F32, []),
        new("empty", DType.F32, [0, 4]),
        new("half.odd", DType.F16, [1, 13]),
        new("bias", DType.F32, [17]),
        new("layers.0.ünïcode✓", DType.BF16, [2, 3, 1]),
    ];

    static Action<TensorSpec, Stream> From(Dictionary<string, byte[]> data) => (spec, stream) => stream.Write(data[spec.Name]);

    [Test]
    public void Written_file_reads_back_with_same_tensors_bytes_and_metadata()
    {
        string path = Path.Combine(dir, "mixed.safetensors");
        var data = SafetensorsTestFiles.RandomData(MixedSpecs, seed: 7);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "naïve \"quoted\" {json}" };

        SafetensorsWriter.Write(path, MixedSpecs, From(data), metadata);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Path, Is.EqualTo(path));
        Assert.That(file.Metadata, Is.EquivalentTo(metadata));
        Assert.That(file.Tensors.Keys, Is.EquivalentTo(MixedSpecs.Select(s => s.Name)));
        foreach (var spec in MixedSpecs)
        {
            var t = file.Tensors[spec.Name];
            Assert.That(t.DType, Is.EqualTo(spec.DType), spec.Name);
            Assert.That(t.Shape, Is.EqualTo(spec.Shape), spec.Name);
            Assert.That(t.ByteLength, Is.EqualTo(spec.ByteLength), spec.Name);
            Assert.That(t.File, Is.EqualTo(path));
            Assert.That(SafetensorsTestFiles.ReadBytes(file, t), Is.EqualTo(data[spec.Name]), spec.Name);
        }
        Assert.That(file.Tensors["model.embed_tokens.weight"].ElementCount, Is.EqualTo(105));
        Assert.That(file.Tensors["scale"].ElementCount, Is.EqualTo(1));
        Assert.That(file.Tensors["empty"].ElementCount, Is.EqualTo(0));
    }

    [Test]
    public void Data_buffer_starts_eight_byte_aligned()
    {
        string path = Path.Combine(dir, "aligned.safetensors");
        var specs = new TensorSpec[] { new("x", DType.F32, [3]) };
        SafetensorsWriter.Write(path, specs, From(SafetensorsTestFiles.RandomData(specs, 1)));

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Tensors["x"].DataOffset % 8, Is.Zero);
        Assert.That(file.Metadata, Is.Empty);
    }

    [Test]
    public void Callback_writing_too_few_bytes_fails_and_leaves_no_file()
    {
        string path = Path.Combine(dir, "short.safetensors");
        var specs = new TensorSpec[] { new("a", DType.F32, [2]), new("b", DType.BF16, [3]) };

        Assert.That(() => SafetensorsWriter.Write(path, specs, (spec, stream) => stream.Write(new byte[spec.Name == "b" ? 4 : 8])),
            Throws.InvalidOperationException.With.Message.Contains("tensor 'b' wrote 4 bytes, expected 6"));
        Assert.That(Directory.GetFiles(dir), Is.Empty);
    }

    [Test]
    public void Callback_writing_too_many_bytes_fails_at_that_tensor_and_leaves_no_file()
    {
        string path = Path.Combine(dir, "long.safetensors");
        var specs = new TensorSpec[] { new("a", DType.F32, [2]) };

        Assert.That(() => SafetensorsWriter.Write(path, specs, (_, stream) => stream.Write(new byte[9])),
            Throws.InvalidOperationException.With.Message.Contains("tensor 'a' wrote 9 bytes or more, expected 8"));
        Assert.That(Directory.GetFiles(dir), Is.Empty);
    }

    [Test]
    public void Failed_write_keeps_the_previous_file_intact()
    {
        string path = Path.Combine(dir, "kept.safetensors");
        var specs = new TensorSpec[] { new("a", DType.F32, [2]) };
        var data = SafetensorsTestFiles.RandomData(specs, 3);
        SafetensorsWriter.Write(path, specs, From(data));

        Assert.That(() => SafetensorsWriter.Write(path, specs, (_, _) => throw new IOException("disk gone")), Throws.InstanceOf<IOException>());

        using var file = SafetensorsFile.Open(path);
        Assert.That(SafetensorsTestFiles.ReadBytes(file, file.Tensors["a"]), Is.EqualTo(data["a"]));
        Assert.That(Directory.GetFiles(dir), Has.Length.EqualTo(1));
    }

    [Test]
    public void Duplicate_and_reserved_names_and_negative_dims_are_rejected()
    {
        string path = Path.Combine(dir, "bad.safetensors");
        Assert.That(() => SafetensorsWriter.Write(path, [new("a", DType.F32, [1]), new("a", DType.F16, [1])], (_, _) => { }),
            Throws.ArgumentException.With.Message.Contains("'a' appears twice"));
        Assert.That(() => SafetensorsWriter.Write(path, [new("__metadata__", DType.F32, [1])], (_, _) => { }),
            Throws.ArgumentException.With.Message.Contains("reserved"));
        Assert.That(() => SafetensorsWriter.Write(path, [new("n", DType.F32, [2, -1])], (_, _) => { }),
            Throws.ArgumentException.With.Message.Contains("negative dimension"));
    }

    static TensorSpec[] ManySpecs() =>
        Enumerable.Range(0, 12)
            .Select(i => new TensorSpec($"layers.{i}.weight", (DType)(i % 3), [i + 1, 7]))
            .Append(new TensorSpec("huge", DType.F32, [100]))
            .ToArray();

    [Test]
    public void Model_larger_than_shard_limit_is_split_into_shards_with_an_index_and_reads_back()
    {
        var specs = ManySpecs();
        var data = SafetensorsTestFiles.RandomData(specs, seed: 11);

        SafetensorsWriter.WriteModel(dir, specs, From(data), maxShardBytes: 200);

        var shardFiles = Directory.GetFiles(dir, "model-*.safetensors").Select(f => Path.GetFileName(f)).Order().ToArray();
        Assert.That(shardFiles.Length, Is.GreaterThan(2));
        Assert.That(shardFiles[0], Is.EqualTo($"model-00001-of-{shardFiles.Length:D5}.safetensors"));
        Assert.That(File.Exists(Path.Combine(dir, TensorStore.SingleFileName)), Is.False);
        Assert.That(Directory.GetFiles(dir, "*.tmp"), Is.Empty);

        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, TensorStore.IndexFileName)));
        Assert.That(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(specs.Sum(s => s.ByteLength)));
        var weightMap = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.That(weightMap.Keys, Is.EquivalentTo(specs.Select(s => s.Name)));
        Assert.That(weightMap.Values.Distinct(), Is.EquivalentTo(shardFiles));

        foreach (string shard in shardFiles)
        {
            using var file = SafetensorsFile.Open(Path.Combine(dir, shard));
            Assert.That(file.Metadata["format"], Is.EqualTo("pt"), "transformers requires format=pt");
            long dataBytes = file.Tensors.Values.Sum(t => t.ByteLength);
            Assert.That(dataBytes <= 200 || file.Tensors.Count == 1, $"{shard} holds {dataBytes} bytes");
        }

        using var store = TensorStore.Open(dir);
        Assert.That(store.Names, Is.EquivalentTo(specs.Select(s => s.Name)));
        foreach (var spec in specs)
        {
            var t = store.Require(spec.Name, spec.Shape);
            Assert.That(t.File, Is.EqualTo(Path.Combine(dir, weightMap[spec.Name])));
            Assert.That(SafetensorsTestFiles.ReadBytes(store, t), Is.EqualTo(data[spec.Name]), spec.Name);
        }
    }

    [Test]
    public void Model_within_shard_limit_is_one_plain_model_safetensors_without_index()
    {
        var specs = ManySpecs();
        var data = SafetensorsTestFiles.RandomData(specs, seed: 12);

        SafetensorsWriter.WriteModel(dir, specs, From(data));

        Assert.That(Directory.GetFiles(dir).Select(f => Path.GetFileName(f)), Is.EquivalentTo(new[] { TensorStore.SingleFileName }));
        using var store = TensorStore.Open(dir);
        foreach (var spec in specs)
            Assert.That(SafetensorsTestFiles.ReadBytes(store, store.Require(spec.Name, spec.Shape)), Is.EqualTo(data[spec.Name]));
    }

    [Test]
    public void Rewriting_a_model_in_the_other_layout_removes_the_stale_entry_file()
    {
        var specs = ManySpecs();
        SafetensorsWriter.WriteModel(dir, specs, From(SafetensorsTestFiles.RandomData(specs, 1)));
        var shardedData = SafetensorsTestFiles.RandomData(specs, 2);

        SafetensorsWriter.WriteModel(dir, specs, From(shardedData), maxShardBytes: 300);

        Assert.That(File.Exists(Path.Combine(dir, TensorStore.SingleFileName)), Is.False);
        using (var store = TensorStore.Open(dir))
            Assert.That(SafetensorsTestFiles.ReadBytes(store, store.Require("huge", 100)), Is.EqualTo(shardedData["huge"]));

        SafetensorsWriter.WriteModel(dir, specs, From(SafetensorsTestFiles.RandomData(specs, 3)));

        Assert.That(File.Exists(Path.Combine(dir, TensorStore.IndexFileName)), Is.False);
    }
}
