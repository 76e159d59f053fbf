using NUnit.Framework;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using SteerEngine.Steering;
using SteerEngine.Steering.Formats;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Steering;

/// <summary>
/// Malformed files: InvalidDataException whose message names the file and the problem; bad
/// arguments: ArgumentException (the contract documented on <see cref="VectorFile"/>).
/// </summary>
[TestFixture]
public class VectorFileErrorTests
{
    const int Hidden = 37;

    static string TempPath(string name) => Path.Combine(TestModels.TempDir("vec-bad"), name);

    static string WrittenFile(string name, SteeringVector? vector = null, int? layer = null)
    {
        string path = TempPath(name);
        VectorFile.Write(path, vector ?? SteeringVector.Direction(Compare.RandomVector(new Random(1), Hidden)), layer);
        return path;
    }

    static void ThrowsInvalidData(string path, params string[] fragments)
    {
        var e = Assert.Throws<InvalidDataException>(() => VectorFile.Read(path))!;
        Assert.That(e.Message, Does.StartWith(path + ": "));
        foreach (string f in fragments)
            Assert.That(e.Message, Does.Contain(f));
        Assert.That(e.Message, Does.Not.Contain("\n"));
    }

    static void WriteZip(string path, params (string Name, byte[] Bytes)[] entries)
    {
        using var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create);
        foreach (var (name, bytes) in entries)
        {
            using Stream s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
            s.Write(bytes);
        }
    }

    static byte[] Entry(string zipPath, string name)
    {
        using ZipArchive zip = ZipFile.OpenRead(zipPath);
        using var ms = new MemoryStream();
        zip.GetEntry(name)!.Open().CopyTo(ms);
        return ms.ToArray();
    }

    static int IndexOf(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle));

    [Test]
    public void Missing_file_is_reported_by_path()
    {
        string path = TempPath("absent.pt");
        Assert.That(() => VectorFile.Read(path), Throws.TypeOf<FileNotFoundException>().With.Message.Contains(path));
    }

    [Test]
    public void Unknown_extension_is_an_argument_error()
    {
        string path = TempPath("v.txt");
        File.WriteAllText(path, "1 2 3");
        Assert.That(() => VectorFile.Read(path), Throws.ArgumentException.With.Message.Contains("unknown vector format '.txt'"));
        Assert.That(() => VectorFile.Write(path, SteeringVector.Direction([1f])), Throws.ArgumentException.With.Message.Contains(path));
    }

    [Test]
    public void A_vector_with_nan_is_rejected_naming_the_element()
    {
        float[] v = new float[8];
        v[6] = float.NaN;
        ThrowsInvalidData(WrittenFile("nan.pt", SteeringVector.Direction(v)), "element 6", "NaN");
        float[][] rows = [new float[4], new float[4], new float[4]];
        rows[2][1] = float.PositiveInfinity;
        ThrowsInvalidData(WrittenFile("inf.npy", SteeringVector.PerLayerSet(rows)), "row 2 element 1");
    }

    [Test]
    public void The_wrong_hidden_size_for_the_model_names_the_file_and_both_sizes()
    {
        string path = WrittenFile("small.pt");
        SteeringVector v = VectorFile.Read(path);
        Assert.That(() => v.CheckHidden(64), Throws.ArgumentException.With.Message.Contains(path).And.Message.Contains("37 elements").And.Message.Contains("64"));
        var steering = new SequenceSteering([new SteeringAdd(1, v.ForBlock(1), 2f)], 3);
        Assert.That(() => steering.Validate(numLayers: 4, hidden: 64), Throws.ArgumentException.With.Message.Contains("37 elements"));
    }

    [Test]
    public void Truncated_npy_is_rejected()
    {
        string path = WrittenFile("cut.npy", SteeringVector.Direction(new float[16]));
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^5]);
        ThrowsInvalidData(path, "needs 64");
    }

    [Test]
    public void Damaged_safetensors_is_invalid_data()
    {
        string path = WrittenFile("cut.safetensors");
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^20]);
        ThrowsInvalidData(path);
    }

    // ---- torch.save ----

    [Test]
    public void Truncated_torch_zip_is_rejected()
    {
        string path = WrittenFile("cut.pt");
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        ThrowsInvalidData(path, "zip archive");
    }

    [Test]
    public void Torch_zip_without_data_pkl_is_rejected()
    {
        string path = TempPath("nopickle.pt");
        WriteZip(path, ("nopickle/version", "3\n"u8.ToArray()), ("nopickle/data/0", new byte[Hidden * 4]));
        ThrowsInvalidData(path, "no <folder>/data.pkl");
    }

    [Test]
    public void Legacy_torch_save_format_is_named()
    {
        string path = TempPath("legacy.pt");
        File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        ThrowsInvalidData(path, "legacy");
    }

    [Test]
    public void Unsupported_pickle_opcode_is_named()
    {
        string path = TempPath("set.pt");
        WriteZip(path, ("set/data.pkl", [0x80, 0x02, 0x8f, (byte)'.']), ("set/version", "3\n"u8.ToArray()));
        ThrowsInvalidData(path, "set/data.pkl", "unsupported pickle opcode EMPTY_SET (0x8f)", "at byte 2");
    }

    [Test]
    public void Pickle_that_ends_without_stop_is_rejected()
    {
        string path = WrittenFile("cut.pt");
        byte[] pickle = Entry(path, "cut/data.pkl");
        WriteZip(path, ("cut/data.pkl", pickle[..^1]), ("cut/data/0", Entry(path, "cut/data/0")));
        ThrowsInvalidData(path, "pickle ends without STOP");
    }

    [Test]
    public void Storage_shorter_than_its_element_count_is_rejected()
    {
        string path = WrittenFile("short.pt");
        byte[] data = Entry(path, "short/data/0");
        WriteZip(path, ("short/data.pkl", Entry(path, "short/data.pkl")), ("short/data/0", data[..80]));
        ThrowsInvalidData(path, "short/data/0 is 80 bytes", "37 Float elements need 148");
    }

    [Test]
    public void Storage_shorter_than_the_shape_needs_is_rejected()
    {
        // Patch the persistent id's numel (BININT 37 after 'cpu') to 20 and cut the storage to match.
        string path = WrittenFile("small.pt");
        byte[] pickle = Entry(path, "small/data.pkl");
        int numel = IndexOf(pickle, "cpu") + 3;
        Assert.That(pickle[numel], Is.EqualTo((byte)'J'));
        BinaryPrimitives.WriteInt32LittleEndian(pickle.AsSpan(numel + 1), 20);
        WriteZip(path, ("small/data.pkl", pickle), ("small/data/0", Entry(path, "small/data/0")[..80]));
        ThrowsInvalidData(path, "holds 20 elements", "shape [37]", "needs 37");
    }

    [Test]
    public void A_storage_missing_from_the_archive_is_named()
    {
        string path = WrittenFile("nodata.pt");
        WriteZip(path, ("nodata/data.pkl", Entry(path, "nodata/data.pkl")), ("nodata/version", "3\n"u8.ToArray()));
        ThrowsInvalidData(path, "nodata/data/0 is missing");
    }

    [Test]
    public void Integer_storage_is_unsupported()
    {
        string path = WrittenFile("long.pt");
        byte[] pickle = Entry(path, "long/data.pkl");
        int at = IndexOf(pickle, "FloatStorage");
        Encoding.ASCII.GetBytes("LongStorage\n").CopyTo(pickle, at);
        pickle = [.. pickle[..(at + 12)], .. pickle[(at + 13)..]];
        WriteZip(path, ("long/data.pkl", pickle), ("long/data/0", Entry(path, "long/data/0")));
        ThrowsInvalidData(path, "torch.LongStorage is not supported");
    }

    [Test]
    public void A_pickle_that_is_not_a_tensor_is_rejected()
    {
        string path = TempPath("list.pt");
        WriteZip(path, ("list/data.pkl", [0x80, 0x02, (byte)']', (byte)'.']));
        ThrowsInvalidData(path, "holds a list", "expected a tensor");
    }

    [Test]
    public void A_rank_3_tensor_is_rejected_with_its_shape()
    {
        string path = WrittenFile("cube.npy", SteeringVector.Direction(new float[24]));
        byte[] bytes = File.ReadAllBytes(path);
        string header = Encoding.ASCII.GetString(bytes, 10, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)));
        Encoding.ASCII.GetBytes(header.Replace("(24,), ", "(2,3,4),")).CopyTo(bytes, 10);
        File.WriteAllBytes(path, bytes);
        ThrowsInvalidData(path, "shape [2, 3, 4]", "expected [hidden] or [layers+1, hidden]");
    }

    // ---- GGUF ----

    static string WrittenGguf(string name) => WrittenFile(name, SteeringVector.PerLayerSet(
        Enumerable.Range(0, 5).Select(r => Compare.RandomVector(new Random(r), Hidden)).ToArray()));

    [Test]
    public void Gguf_with_bad_magic_is_rejected()
    {
        string path = WrittenGguf("magic.gguf");
        byte[] bytes = File.ReadAllBytes(path);
        "GGML"u8.CopyTo(bytes);
        File.WriteAllBytes(path, bytes);
        ThrowsInvalidData(path, "bad magic \"GGML\"");
    }

    [TestCase(1u)]
    [TestCase(4u)]
    [TestCase(0x03000000u)]
    public void Gguf_of_an_unsupported_version_is_rejected(uint version)
    {
        string path = WrittenGguf("version.gguf");
        byte[] bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), version);
        File.WriteAllBytes(path, bytes);
        ThrowsInvalidData(path, $"GGUF version {version} is not supported");
    }

    [Test]
    public void Gguf_with_truncated_tensor_data_is_rejected()
    {
        string path = WrittenGguf("cut.gguf");
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..^40]);
        ThrowsInvalidData(path, "tensor 'direction.1'", "runs past the end of the file", "truncated");
    }

    [Test]
    public void Gguf_cut_inside_the_header_says_what_it_was_reading()
    {
        string path = WrittenGguf("header.gguf");
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..60]);
        ThrowsInvalidData(path, "while reading", "truncated");
    }

    [Test]
    public void Gguf_tensor_of_a_type_other_than_f32_is_rejected()
    {
        string path = WrittenGguf("f16.gguf");
        byte[] bytes = File.ReadAllBytes(path);
        int typeField = IndexOf(bytes, "direction.2") + "direction.2".Length + 4 + 8;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(typeField), 1);
        File.WriteAllBytes(path, bytes);
        ThrowsInvalidData(path, "tensor 'direction.2' has type F16 (1)", "control vectors are F32");
    }

    [Test]
    public void Gguf_model_file_is_not_a_control_vector()
    {
        string path = TempPath("model.gguf");
        using (var f = File.Create(path))
            GgufFile.Write(f, [("general.architecture", "llama")], [("token_embd.weight", new float[8])]);
        ThrowsInvalidData(path, "general.architecture is 'llama'", "not a control vector");
    }

    [Test]
    public void Gguf_tensor_not_named_direction_N_is_rejected()
    {
        string path = TempPath("names.gguf");
        using (var f = File.Create(path))
            GgufFile.Write(f, [("general.architecture", "controlvector")], [("direction.2", new float[8]), ("direction.x", new float[8])]);
        ThrowsInvalidData(path, "tensor 'direction.x' is not named direction.N");
    }

    [Test]
    public void Gguf_directions_of_different_lengths_are_rejected()
    {
        string path = TempPath("lengths.gguf");
        using (var f = File.Create(path))
            GgufFile.Write(f, [("general.architecture", "controlvector")], [("direction.2", new float[8]), ("direction.3", new float[9])]);
        ThrowsInvalidData(path, "direction.3 has 9 elements, direction.2 has 8");
    }

    [Test]
    public void Gguf_without_directions_is_rejected()
    {
        string path = TempPath("empty.gguf");
        using (var f = File.Create(path))
            GgufFile.Write(f, [("general.architecture", "controlvector")], []);
        ThrowsInvalidData(path, "no direction.N tensors");
    }
}
