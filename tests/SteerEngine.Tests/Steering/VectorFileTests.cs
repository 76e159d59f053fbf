using NUnit.Framework;
using System.IO.Compression;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Steering;

[TestFixture]
public class VectorFileTests
{
    const int Hidden = 37;

    static string TempPath(string name) => Path.Combine(TestModels.TempDir("vec"), name);

    static float[][] RandomRows(int seed, int rows) =>
        Enumerable.Range(0, rows).Select(r => Compare.RandomVector(new Random(seed * 100 + r), Hidden)).ToArray();

    [TestCase("v.pt")]
    [TestCase("v.pth")]
    [TestCase("v.safetensors")]
    [TestCase("v.npy")]
    public void A_direction_round_trips(string name)
    {
        float[] v = Compare.RandomVector(new Random(1), Hidden);
        string path = TempPath(name);
        VectorFile.Write(path, SteeringVector.Direction(v));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.PerLayer, Is.False);
        Assert.That(back.ForBlock(3), Is.EqualTo(v));
        Assert.That(back.Source, Is.EqualTo(path));
    }

    [TestCase("layers.pt")]
    [TestCase("layers.pth")]
    [TestCase("layers.safetensors")]
    [TestCase("layers.npy")]
    public void A_per_layer_set_round_trips_and_block_L_reads_row_L_plus_1(string name)
    {
        float[][] rows = RandomRows(2, 6);
        string path = TempPath(name);
        VectorFile.Write(path, SteeringVector.PerLayerSet(rows));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.PerLayer, Is.True);
        Assert.That(Enumerable.Range(0, back.Rows).Select(back.Row), Is.EqualTo(rows));
        Assert.That(back.ForBlock(0), Is.EqualTo(rows[1]));
        Assert.That(back.ForBlock(4), Is.EqualTo(rows[5]));
        Assert.That(() => back.ForBlock(5), Throws.ArgumentException.With.Message.Contains("block 5 needs row 6"));
    }

    [Test]
    public void A_direction_written_to_gguf_at_layer_L_reads_back_as_block_L()
    {
        float[] v = Compare.RandomVector(new Random(3), Hidden);
        string path = TempPath("v.gguf");
        VectorFile.Write(path, SteeringVector.Direction(v), layer: 3);
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.PerLayer, Is.True);
        Assert.That(back.Rows, Is.EqualTo(5));
        Assert.That(back.ForBlock(3), Is.EqualTo(v));
        for (int block = 0; block < 3; block++)
            Assert.That(back.ForBlock(block), Is.All.EqualTo(0f), $"block {block}");
    }

    [Test]
    public void A_per_layer_set_round_trips_through_gguf_without_the_rows_gguf_cannot_hold()
    {
        // Row 0 (embeddings) is no block's output, and llama.cpp rejects direction.0 (block 0, row 1).
        float[][] rows = RandomRows(4, 6);
        rows[0] = new float[Hidden];
        rows[1] = new float[Hidden];
        string path = TempPath("layers.gguf");
        VectorFile.Write(path, SteeringVector.PerLayerSet(rows));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(Enumerable.Range(0, back.Rows).Select(back.Row), Is.EqualTo(rows));
    }

    [Test]
    public void Gguf_leaves_out_the_embeddings_row_and_block_0_as_repeng_does()
    {
        float[][] rows = RandomRows(5, 4);
        string path = TempPath("layers.gguf");
        VectorFile.Write(path, SteeringVector.PerLayerSet(rows));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.Row(0), Is.All.EqualTo(0f));
        Assert.That(back.ForBlock(0), Is.All.EqualTo(0f));
        Assert.That(back.ForBlock(1), Is.EqualTo(rows[2]));
        Assert.That(back.ForBlock(2), Is.EqualTo(rows[3]));
    }

    [Test]
    public void Gguf_needs_a_layer_of_at_least_1_for_a_direction_and_none_for_a_per_layer_set()
    {
        var direction = SteeringVector.Direction(new float[Hidden]);
        Assert.That(() => VectorFile.Write(TempPath("a.gguf"), direction),
            Throws.ArgumentException.With.Message.Contains("a.gguf").And.Message.Contains("needs the layer"));
        Assert.That(() => VectorFile.Write(TempPath("b.gguf"), direction, layer: 0),
            Throws.ArgumentException.With.Message.Contains("b.gguf").And.Message.Contains("llama.cpp rejects"));
        Assert.That(() => VectorFile.Write(TempPath("c.gguf"), SteeringVector.PerLayerSet(RandomRows(6, 4)), layer: 2),
            Throws.ArgumentException.With.Message.Contains("carries its own layers"));
    }

    [Test]
    public void Formats_that_record_no_layer_ignore_it()
    {
        float[] v = Compare.RandomVector(new Random(7), Hidden);
        string path = TempPath("v.pt");
        VectorFile.Write(path, SteeringVector.Direction(v), layer: 12);
        Assert.That(VectorFile.Read(path).ForBlock(0), Is.EqualTo(v));
    }

    [Test]
    public void Torch_files_are_stored_zips_under_the_stem_with_version_and_byteorder()
    {
        string path = TempPath("vec_ep20_layer15.pt");
        VectorFile.Write(path, SteeringVector.Direction(Compare.RandomVector(new Random(8), Hidden)));
        using ZipArchive zip = ZipFile.OpenRead(path);
        Assert.That(zip.Entries.Select(e => e.FullName), Is.EquivalentTo(new[]
        {
            "vec_ep20_layer15/data.pkl", "vec_ep20_layer15/byteorder", "vec_ep20_layer15/data/0", "vec_ep20_layer15/version",
        }));
        Assert.That(zip.Entries.All(e => e.CompressedLength == e.Length), "entries are stored, not compressed");
        Assert.That(new StreamReader(zip.GetEntry("vec_ep20_layer15/version")!.Open()).ReadToEnd(), Is.EqualTo("3\n"));
        Assert.That(new StreamReader(zip.GetEntry("vec_ep20_layer15/byteorder")!.Open()).ReadToEnd(), Is.EqualTo("little"));
        Assert.That(zip.GetEntry("vec_ep20_layer15/data/0")!.Length, Is.EqualTo(Hidden * 4));
    }

    [Test]
    public void Safetensors_with_direction_N_tensors_reads_as_a_per_layer_set()
    {
        float[][] dirs = RandomRows(9, 2);
        string path = TempPath("layers.safetensors");
        var specs = new[] { new TensorSpec("direction.3", DType.F32, [Hidden]), new TensorSpec("direction.1", DType.F32, [Hidden]) };
        SafetensorsWriter.Write(path, specs, (spec, s) =>
            s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes((spec.Name == "direction.3" ? dirs[0] : dirs[1]).AsSpan())));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.Rows, Is.EqualTo(5));
        Assert.That(back.ForBlock(3), Is.EqualTo(dirs[0]));
        Assert.That(back.ForBlock(1), Is.EqualTo(dirs[1]));
        Assert.That(back.ForBlock(2), Is.All.EqualTo(0f));
        Assert.That(back.ForBlock(0), Is.All.EqualTo(0f));
    }

    [Test]
    public void Writing_replaces_an_existing_file_and_leaves_no_temporary_behind()
    {
        string path = TempPath("v.pt");
        VectorFile.Write(path, SteeringVector.Direction(new float[Hidden]));
        float[] v = Compare.RandomVector(new Random(10), Hidden);
        VectorFile.Write(path, SteeringVector.Direction(v));
        Assert.That(VectorFile.Read(path).ForBlock(0), Is.EqualTo(v));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EquivalentTo(new[] { path }));
    }
}
