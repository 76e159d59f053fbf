using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using SteerEngine.Model;

namespace SteerEngine.Tests.Model;

public class SafetensorsFuzzTests
{
    const int Mutations = 3000;

    static readonly string[] JsonJunk =
    [
        "{", "}", "[", "]", "\"", ",", ":", "-", "0", "1e309", "-1", "9223372036854775807", "18446744073709551616",
        "null", "true", "\"F64\"", "\"BF16\"", "[]", "{}", "\"__metadata__\"", "\"dtype\":", "\"shape\":[1,2]",
        "\"data_offsets\":[0,4]", "\\u0000", "\\ud800", "\u00e9", "\t", "0.5",
    ];

    /// <summary>
    /// One random corruption of a valid file: what a disk error, a truncated download or a
    /// buggy writer might produce. Returns a description for the failure message.
    /// </summary>
    static string Mutate(Random random, ref byte[] file)
    {
        // The header as the length field currently claims it, clipped to the file.
        int headerEnd = file.Length < 8 ? file.Length : (int)Math.Min(8 + Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(file), (ulong)file.Length), (ulong)file.Length);
        int headerLength = Math.Max(headerEnd - 8, 0);
        switch (random.Next(6))
        {
            case 0 when headerEnd > 8:
            {
                int at = random.Next(8, headerEnd);
                file[at] ^= (byte)(1 << random.Next(8));
                return $"flip bit at {at}";
            }
            case 1 when headerEnd > 8:
            {
                int at = random.Next(8, headerEnd);
                var digits = "0123456789"u8;
                file[at] = digits[random.Next(10)];
                return $"digit at {at}";
            }
            case 2:
            {
                int length = random.Next(file.Length);
                file = file[..length];
                return $"truncate to {length}";
            }
            case 3 when file.Length >= 8:
            {
                ulong value = random.Next(3) switch
                {
                    0 => (ulong)(headerLength + random.Next(-16, 17)),
                    1 => (ulong)random.Next(file.Length + 64),
                    _ => (ulong)random.NextInt64() * 2 + (ulong)random.Next(2),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(file, value);
                return $"header length {value}";
            }
            case 4 when headerEnd > 8:
            {
                int at = random.Next(8, headerEnd + 1);
                byte[] junk = Encoding.UTF8.GetBytes(JsonJunk[random.Next(JsonJunk.Length)]);
                file = [.. file[..at], .. junk, .. file[at..]];
                bool fixLength = random.Next(2) == 0;
                if (fixLength)
                    BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)(headerLength + junk.Length));
                return $"insert {Encoding.UTF8.GetString(junk)} at {at}{(fixLength ? " with length fixed" : "")}";
            }
            default:
            {
                var tail = new byte[random.Next(1, 32)];
                random.NextBytes(tail);
                file = [.. file, .. tail];
                return $"append {tail.Length} bytes";
            }
        }
    }

    [Test]
    public unsafe void Mutated_files_either_open_with_every_tensor_inside_the_file_or_throw_ModelFormatException()
    {
        string dir = SafetensorsTestFiles.NewTemporaryDirectory();
        try
        {
            string validPath = Path.Combine(dir, "valid.safetensors");
            var specs = new TensorSpec[] { new("a", DType.BF16, [2, 3]), new("b", DType.F32, [4]), new("c", DType.F16, [5]), new("d", DType.F32, [0]) };
            var data = SafetensorsTestFiles.RandomData(specs, seed: 5);
            SafetensorsWriter.Write(validPath, specs, (spec, stream) => stream.Write(data[spec.Name]), new Dictionary<string, string> { ["k"] = "v" });
            byte[] valid = File.ReadAllBytes(validPath);

            string path = Path.Combine(dir, "mutated.safetensors");
            var random = new Random(20240611);
            int opened = 0, rejected = 0;
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < Mutations; i++)
            {
                byte[] bytes = (byte[])valid.Clone();
                var applied = Enumerable.Range(0, random.Next(1, 4)).Select(_ => Mutate(random, ref bytes)).ToList();
                File.WriteAllBytes(path, bytes);
                try
                {
                    using var file = SafetensorsFile.Open(path);
                    foreach (var t in file.Tensors.Values)
                    {
                        Assert.That(t.DataOffset >= 8 && t.DataOffset + t.ByteLength <= bytes.Length,
                            $"mutation {i} ({string.Join("; ", applied)}): tensor '{t.Name}' at {t.DataOffset}+{t.ByteLength} outside {bytes.Length}-byte file");
                        if (t.ByteLength > 0)
                        {
                            byte* p = file.DataPointer(t);
                            Assert.That(p[0], Is.EqualTo(bytes[t.DataOffset]));
                            Assert.That(p[t.ByteLength - 1], Is.EqualTo(bytes[t.DataOffset + t.ByteLength - 1]));
                        }
                    }
                    opened++;
                }
                catch (ModelFormatException e)
                {
                    Assert.That(e.Message, Does.StartWith(path + ": "));
                    rejected++;
                }
                catch (Exception e) when (e is not AssertionException)
                {
                    Assert.Fail($"mutation {i} ({string.Join("; ", applied)}) threw {e.GetType().Name}: {e.Message}");
                }
            }
            TestContext.Out.WriteLine($"{opened} opened, {rejected} rejected in {clock.ElapsedMilliseconds} ms");
            Assert.That(opened, Is.GreaterThan(Mutations / 20), "too few mutations left the file valid to test the success path");
            Assert.That(rejected, Is.GreaterThan(Mutations / 2));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
