using System.Buffers.Binary;
using System.Text;
using NUnit.Framework;
using SteerEngine.Model;

namespace SteerEngine.Tests.Model;

public class SafetensorsFileTests
{
    string dir = "";

    [SetUp]
    public void CreateDirectory() => dir = SafetensorsTestFiles.NewTemporaryDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(dir, recursive: true);

    string Save(byte[] content, string name = "weights.safetensors")
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    static TestCaseData Malformed(string behaviour, byte[] content, string problem) =>
        new TestCaseData(content, problem).SetName(behaviour);

    static TestCaseData Malformed(string behaviour, string header, int dataLength, string problem) =>
        Malformed(behaviour, SafetensorsTestFiles.Raw(header, dataLength), problem);

    static IEnumerable<TestCaseData> MalformedFiles()
    {
        yield return Malformed("File_shorter_than_length_field_is_rejected", new byte[5], "file is 5 bytes, shorter than the 8-byte header length field");
        yield return Malformed("Header_length_zero_is_rejected", SafetensorsTestFiles.WithHeaderLength(0, 64), "header length is 0");
        yield return Malformed("Header_length_over_100MB_is_rejected", SafetensorsTestFiles.WithHeaderLength(200_000_000, 64),
            "header length 200000000 exceeds the 100000000-byte limit");
        yield return Malformed("Header_length_past_end_of_file_is_rejected", SafetensorsTestFiles.WithHeaderLength(1000, 20),
            "header length 1000 runs past end of file (20 bytes)");
        yield return Malformed("Header_length_near_u64_max_is_rejected", SafetensorsTestFiles.WithHeaderLength(ulong.MaxValue, 20),
            "exceeds the 100000000-byte limit");
        yield return Malformed("Header_that_is_not_utf8_is_rejected",
            SafetensorsTestFiles.Raw([.. "{\""u8, 0xC3, 0x28, .. "\":1}"u8], 0), "header is not valid UTF-8");
        yield return Malformed("Header_that_is_not_json_is_rejected", "{\"w\": {\"dtype\": \"F32\",", 0, "header is not valid JSON");
        yield return Malformed("Header_with_trailing_junk_is_rejected", "{} x", 0, "header is not valid JSON");
        yield return Malformed("Header_with_duplicate_tensor_is_rejected",
            """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8,
            "header is not valid JSON");
        yield return Malformed("Header_with_unpaired_surrogate_escape_is_rejected", """{"w\ud800":{}}""", 0,
            "header is not valid JSON (string at byte 1 escapes an unpaired surrogate)");
        yield return Malformed("Header_that_is_an_array_is_rejected", "[1, 2]", 0, "header is not a JSON object (got Array)");
        yield return Malformed("Tensor_entry_that_is_not_an_object_is_rejected", """{"w": 3}""", 0,
            "tensor 'w': expected an object with dtype, shape and data_offsets, got Number");
        yield return Malformed("Tensor_without_dtype_is_rejected", """{"w":{"shape":[1],"data_offsets":[0,4]}}""", 4,
            "tensor 'w': missing \"dtype\"");
        yield return Malformed("Tensor_without_shape_is_rejected", """{"w":{"dtype":"F32","data_offsets":[0,4]}}""", 4,
            "tensor 'w': missing \"shape\"");
        yield return Malformed("Tensor_without_data_offsets_is_rejected", """{"w":{"dtype":"F32","shape":[1]}}""", 4,
            "tensor 'w': missing \"data_offsets\"");
        yield return Malformed("Dtype_that_is_not_a_string_is_rejected", """{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}""", 4,
            "tensor 'w': \"dtype\" must be a string, got 7");
        yield return Malformed("Shape_that_is_not_an_array_is_rejected", """{"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}}""", 16,
            "tensor 'w': \"shape\" must be an array of non-negative integers, got \"4\"");
        yield return Malformed("Negative_dimension_is_rejected", """{"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,0]}}""", 0,
            "tensor 'w': \"shape\" must be an array of non-negative integers, got [2,-3]");
        yield return Malformed("Fractional_data_offset_is_rejected", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}""", 8,
            "tensor 'w': \"data_offsets\" must be an array of 2 non-negative integers, got [0,4.5]");
        yield return Malformed("Data_offsets_with_three_entries_are_rejected", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", 8,
            "\"data_offsets\" must be an array of 2 non-negative integers");
        yield return Malformed("Unknown_dtype_is_named_with_the_supported_list", """{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}""", 4,
            "tensor 'w': unknown dtype 'Q7' (supported: BF16, F16, F32)");
        yield return Malformed("Known_but_unsupported_dtype_is_called_unsupported", """{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}""", 8,
            "tensor 'ids': unsupported dtype 'I64' (supported: BF16, F16, F32)");
        yield return Malformed("Data_offsets_ending_before_they_begin_are_rejected", """{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""", 8,
            "tensor 'w': data_offsets [8, 4] end before they begin");
        yield return Malformed("Byte_length_not_matching_shape_is_rejected", """{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 16,
            "tensor 'w': data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12");
        yield return Malformed("Data_offsets_past_end_of_data_buffer_are_rejected", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 16,
            "tensor 'w': data_offsets [8, 24] run past end of data buffer (16 bytes)");
        yield return Malformed("Overlapping_tensors_are_rejected",
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12,
            "tensors 'a' [0, 8] and 'b' [4, 12] overlap in the data buffer");
        yield return Malformed("Tensor_inside_another_is_rejected_as_overlap",
            """{"big":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"c":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},"in":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]}}""", 24,
            "tensors 'big' [0, 16] and 'in' [6, 8] overlap");
        yield return Malformed("Shape_whose_size_overflows_is_rejected",
            """{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""", 0,
            "tensor 'w': shape [4294967296, 4294967296] has more bytes than a file can hold");
        yield return Malformed("Metadata_that_is_not_an_object_is_rejected", """{"__metadata__":[1]}""", 0,
            "\"__metadata__\" must be an object of strings, got Array");
        yield return Malformed("Metadata_value_that_is_not_a_string_is_rejected", """{"__metadata__":{"step":100}}""", 0,
            "\"__metadata__\" value for 'step' must be a string, got Number");
        yield return Malformed("Control_characters_in_names_do_not_break_the_message_line",
            """{"bad\nname":{"dtype":"X","shape":[],"data_offsets":[0,0]}}""", 0, "tensor 'bad?name': unknown dtype 'X'");
    }

    [TestCaseSource(nameof(MalformedFiles))]
    public void Malformed_file_is_rejected_with_a_one_line_message_naming_file_and_problem(byte[] content, string problem)
    {
        string path = Save(content);

        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.That(e!.Message, Does.StartWith(path + ": "));
        Assert.That(e.Message, Does.Contain(problem));
        Assert.That(e.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void Gaps_between_tensors_empty_tensors_and_space_padding_are_accepted()
    {
        string header = """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":{"dtype":"F16","shape":[0,3],"data_offsets":[2,2]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}}     """;
        string path = Save(SafetensorsTestFiles.Raw(header, 20));

        using var file = SafetensorsFile.Open(path);

        long dataStart = 8 + Encoding.UTF8.GetByteCount(header);
        Assert.That(file.Tensors["b"].DataOffset, Is.EqualTo(dataStart + 12));
        Assert.That(file.Tensors["z"].ByteLength, Is.Zero);
        Assert.That(file.Metadata, Is.Empty);
    }

    [Test]
    public void File_with_no_tensors_opens_empty()
    {
        using var file = SafetensorsFile.Open(Save(SafetensorsTestFiles.Raw("{}", 0)));
        Assert.That(file.Tensors, Is.Empty);
    }

    [Test]
    public unsafe void Data_pointer_addresses_the_tensor_bytes()
    {
        string path = Save(SafetensorsTestFiles.Raw("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12));
        var expected = File.ReadAllBytes(path)[^8..];

        using var file = SafetensorsFile.Open(path);

        Assert.That(new ReadOnlySpan<byte>(file.DataPointer(file.Tensors["w"]), 8).ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void Data_pointer_refuses_a_tensor_of_another_file_and_a_disposed_file()
    {
        string path = Save(SafetensorsTestFiles.Raw("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4));
        var file = SafetensorsFile.Open(path);
        var foreign = file.Tensors["w"] with { File = "other.safetensors" };
        var beyond = file.Tensors["w"] with { DataOffset = 1 << 20 };

        unsafe
        {
            Assert.That(() => file.DataPointer(foreign), Throws.ArgumentException);
            Assert.That(() => file.DataPointer(beyond), Throws.ArgumentException);
            file.Dispose();
            Assert.That(() => file.DataPointer(file.Tensors["w"]), Throws.InstanceOf<ObjectDisposedException>());
        }
    }

    [Test]
    public unsafe void Tensor_past_the_4GB_mark_of_a_sparse_file_is_read_through_its_pointer()
    {
        const long offset = (4L << 30) + 12;
        string header = $$$"""{"far":{"dtype":"F32","shape":[4],"data_offsets":[{{{offset}}},{{{offset + 16}}}]}}""";
        byte[] headerBytes = Encoding.UTF8.GetBytes(header);
        long dataStart = 8 + headerBytes.Length;
        float[] values = [1.5f, -2.25f, 3e-5f, 7e7f];
        string path = Path.Combine(dir, TensorStore.SingleFileName);
        using (var stream = new FileStream(path, FileMode.CreateNew))
        {
            Span<byte> lengthField = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthField, (ulong)headerBytes.Length);
            stream.Write(lengthField);
            stream.Write(headerBytes);
            stream.SetLength(dataStart + offset + 16);
            stream.Position = dataStart + offset;
            foreach (float v in values)
                stream.Write(BitConverter.GetBytes(v));
        }

        using var store = TensorStore.Open(dir);
        var t = store.Require("far", 4);

        Assert.That(t.DataOffset, Is.EqualTo(dataStart + offset));
        Assert.That(store.ReadF32(t), Is.EqualTo(values));
        Assert.That(*(float*)(store.DataPointer(t) + 12), Is.EqualTo(7e7f));
    }
}
