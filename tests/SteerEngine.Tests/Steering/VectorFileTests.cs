using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Steering;

[TestFixture]
public class VectorFileTests
{
    [TestCase(".npy")]
    [TestCase(".safetensors")]
    public void A_direction_round_trips(string ext)
    {
        float[] v = Compare.RandomVector(new Random(1), 37);
        string path = Path.Combine(TestModels.TempDir("vec"), "v" + ext);
        VectorFile.Write(path, SteeringVector.Direction(v));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.PerLayer, Is.False);
        Assert.That(back.ForBlock(3), Is.EqualTo(v));
    }

    [TestCase(".npy")]
    [TestCase(".safetensors")]
    public void A_per_layer_set_round_trips_and_block_L_reads_row_L_plus_1(string ext)
    {
        var rng = new Random(2);
        float[][] rows = Enumerable.Range(0, 5).Select(_ => Compare.RandomVector(rng, 11)).ToArray();
        string path = Path.Combine(TestModels.TempDir("vec"), "layers" + ext);
        VectorFile.Write(path, SteeringVector.PerLayerSet(rows));
        SteeringVector back = VectorFile.Read(path);
        Assert.That(back.PerLayer, Is.True);
        Assert.That(back.ForBlock(0), Is.EqualTo(rows[1]));
        Assert.That(back.ForBlock(3), Is.EqualTo(rows[4]));
        Assert.That(() => back.ForBlock(4), Throws.ArgumentException.With.Message.Contains("block 4 needs row 5"));
    }

    [Test]
    public void A_vector_with_nan_is_rejected_naming_the_element()
    {
        float[] v = new float[8];
        v[6] = float.NaN;
        string path = Path.Combine(TestModels.TempDir("vec"), "nan.npy");
        VectorFile.Write(path, SteeringVector.Direction(v));
        Assert.That(() => VectorFile.Read(path), Throws.ArgumentException.With.Message.Contains("element 6"));
    }

    [Test]
    public void Truncated_npy_is_rejected()
    {
        string path = Path.Combine(TestModels.TempDir("vec"), "cut.npy");
        VectorFile.Write(path, SteeringVector.Direction(new float[16]));
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);
        Assert.That(() => VectorFile.Read(path), Throws.ArgumentException.With.Message.Contains("needs 64"));
    }

    [Test]
    public void Unknown_extension_is_rejected()
    {
        string path = Path.Combine(TestModels.TempDir("vec"), "v.txt");
        File.WriteAllText(path, "1 2 3");
        Assert.That(() => VectorFile.Read(path), Throws.ArgumentException.With.Message.Contains("unknown vector format"));
    }
}
