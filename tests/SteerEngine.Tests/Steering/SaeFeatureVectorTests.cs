using System.Diagnostics;
using System.Runtime.InteropServices;
using NUnit.Framework;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Steering;

/// <summary>SAE decoder rows as steering vectors: <c>FILE.safetensors#W_dec[ROW]</c> and its scaled forms.</summary>
[TestFixture]
public class SaeFeatureVectorTests
{
    const int Features = 11, Hidden = 37;

    /// <summary>An SAELens-shaped file: W_enc (hidden, features), W_dec (features, hidden), b_dec, a per-feature scale, a 3-D tensor.</summary>
    static (string Path, float[] Decoder, float[] Scale) WriteSae(DType decoderType = DType.F32)
    {
        var rng = new Random(5);
        float[] decoder = Compare.RandomVector(rng, Features * Hidden);
        if (decoderType == DType.BF16) decoder = decoder.Select(x => BFloat16Convert.ToF32(BFloat16Convert.FromF32RoundNearestEven(x))).ToArray();
        float[] scale = Enumerable.Range(0, Features).Select(i => 0.5f + i).ToArray();
        float[] encoder = Compare.RandomVector(rng, Hidden * Features);
        float[] bias = Compare.RandomVector(rng, Hidden);
        string path = Path.Combine(TestModels.TempDir("sae"), "sae.safetensors");
        var specs = new[]
        {
            new TensorSpec("W_enc", DType.F32, [Hidden, Features]),
            new TensorSpec("W_dec", decoderType, [Features, Hidden]),
            new TensorSpec("b_dec", DType.F32, [Hidden]),
            new TensorSpec("typical_act", DType.F32, [Features]),
            new TensorSpec("cube", DType.F32, [2, 3, Hidden]),
        };
        SafetensorsWriter.Write(path, specs, (spec, s) =>
        {
            float[] data = spec.Name switch
            {
                "W_enc" => encoder, "W_dec" => decoder, "b_dec" => bias, "typical_act" => scale,
                _ => new float[2 * 3 * Hidden],
            };
            if (spec.DType == DType.BF16)
                s.Write(MemoryMarshal.AsBytes(data.Select(BFloat16Convert.FromF32RoundNearestEven).ToArray().AsSpan()));
            else
                s.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        });
        return (path, decoder, scale);
    }

    static float[] Row(float[] decoder, int row) => decoder.AsSpan(row * Hidden, Hidden).ToArray();

    [TestCase(DType.F32)]
    [TestCase(DType.BF16)]
    public void A_decoder_row_is_the_vector(DType type)
    {
        var (path, decoder, _) = WriteSae(type);
        SteeringVector v = VectorFile.Read($"{path}#W_dec[7]");
        Assert.That(v.PerLayer, Is.False);
        Assert.That(v.ForBlock(2), Is.EqualTo(Row(decoder, 7)));
        Assert.That(v.Source, Is.EqualTo($"{path}#W_dec[7]"));
    }

    [Test]
    public void A_number_or_a_per_feature_tensor_scales_the_row()
    {
        var (path, decoder, scale) = WriteSae();
        Assert.That(VectorFile.Read($"{path}#W_dec[3]*2.5").ForBlock(0), Is.EqualTo(Row(decoder, 3).Select(x => x * 2.5f)));
        Assert.That(VectorFile.Read($"{path}#W_dec[10]*typical_act").ForBlock(0), Is.EqualTo(Row(decoder, 10).Select(x => x * scale[10])));
    }

    [TestCase("#W_out[1]", "no tensor 'W_out'")]
    [TestCase("#W_dec[11]", "feature 11 is out of range; 'W_dec' has 11 features (0..10)")]
    [TestCase("#W_dec[-1]", "row '-1' is not a feature index")]
    [TestCase("#b_dec[0]", "tensor 'b_dec' has shape [37]; an SAE decoder is [features, hidden]")]
    [TestCase("#cube[0]", "tensor 'cube' has shape [2, 3, 37]")]
    [TestCase("#W_dec[1]*b_dec", "scale tensor 'b_dec' has shape [37]; a per-feature scale is [11]")]
    [TestCase("#W_dec[1]*nope", "no tensor 'nope'")]
    public void A_bad_spec_is_one_clear_error(string suffix, string expected)
    {
        var (path, _, _) = WriteSae();
        var e = Assert.Catch<Exception>(() => VectorFile.Read(path + suffix))!;
        Assert.That(e, Is.InstanceOf<InvalidDataException>().Or.InstanceOf<ArgumentException>());
        Assert.That(e.Message, Does.Contain(expected).And.Contain(path));
    }

    [Test]
    public void Records_name_a_feature_by_its_file_and_row()
    {
        var (path, _, _) = WriteSae();
        Assert.That(VectorFile.NameOf($"{path}#W_dec[3]"), Is.EqualTo($"{Path.GetFileNameWithoutExtension(path)}#W_dec[3]"));
        Assert.That(VectorFile.NameOf($"{path}#W_dec[3]*2.5"), Is.EqualTo($"{Path.GetFileNameWithoutExtension(path)}#W_dec[3]*2.5"));
        Assert.That(SweepVector.FromFile($"{path}#W_dec[3]").Name, Is.Not.EqualTo(SweepVector.FromFile($"{path}#W_dec[4]").Name), "two features of one SAE");
        Assert.That(VectorFile.NameOf(Path.Combine("vectors", "happy.pt")), Is.EqualTo("happy"));
    }

    [Test]
    public void A_missing_file_is_named()
    {
        string path = Path.Combine(TestModels.TempDir("sae"), "absent.safetensors");
        Assert.That(() => VectorFile.Read($"{path}#W_dec[0]"), Throws.TypeOf<FileNotFoundException>().With.Message.Contains(path));
    }

    [Test]
    public void A_row_of_the_wrong_width_is_refused_against_the_model()
    {
        var (path, _, _) = WriteSae();
        SteeringVector v = VectorFile.Read($"{path}#W_dec[0]");
        Assert.That(() => v.CheckHidden(Hidden + 1), Throws.ArgumentException.With.Message.Contains($"{path}#W_dec[0]").And.Message.Contains("37 elements"));
    }

    /// <summary>A file Python writes from the format's definition (struct + json), not with our writer: f16 and bf16 rows.</summary>
    [Test]
    public void A_decoder_python_wrote_reads_back()
    {
        string dir = TestModels.TempDir("sae-py");
        string script = """
            import json, struct, sys
            features, hidden = 5, 6
            rows = [[(f * hidden + j) / 8 - 1.5 for j in range(hidden)] for f in range(features)]
            flat = [x for r in rows for x in r]
            f16 = struct.pack('<%de' % len(flat), *flat)
            bf16 = b''.join(struct.pack('<f', x)[2:] for x in flat)  # exact: these values fit in 8 mantissa bits
            act = struct.pack('<%df' % features, *[10.0 + f for f in range(features)])
            header = {'W_dec': {'dtype': 'F16', 'shape': [features, hidden], 'data_offsets': [0, len(f16)]},
                      'W_dec_bf16': {'dtype': 'BF16', 'shape': [features, hidden], 'data_offsets': [len(f16), len(f16) + len(bf16)]},
                      'act': {'dtype': 'F32', 'shape': [features], 'data_offsets': [len(f16) + len(bf16), len(f16) + len(bf16) + len(act)]},
                      '__metadata__': {'format': 'pt'}}
            h = json.dumps(header).encode()
            h += b' ' * (-len(h) % 8)
            with open(sys.argv[1], 'wb') as out:
                out.write(struct.pack('<Q', len(h)) + h + f16 + bf16 + act)
            """;
        string path = Path.Combine(dir, "py.safetensors");
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(path);
        using (var p = Process.Start(psi)!)
        {
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Zero, err);
        }
        float[] expected = Enumerable.Range(0, 6).Select(j => (3 * 6 + j) / 8f - 1.5f).ToArray();
        Assert.That(VectorFile.Read($"{path}#W_dec[3]").ForBlock(0), Is.EqualTo(expected));
        Assert.That(VectorFile.Read($"{path}#W_dec_bf16[3]").ForBlock(0), Is.EqualTo(expected));
        Assert.That(VectorFile.Read($"{path}#W_dec[3]*act").ForBlock(0), Is.EqualTo(expected.Select(x => x * 13f)));
    }
}
