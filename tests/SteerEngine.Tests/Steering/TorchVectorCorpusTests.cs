using NUnit.Framework;
using System.Diagnostics;
using System.Text.Json;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Steering;

/// <summary>
/// Vector files both ways against real PyTorch (tests/oracle/make_vector_corpus.py): every file torch.save
/// and the gguf-py layout wrote reads back to the values torch holds, and torch.load reads what we write.
/// </summary>
[TestFixture]
public class TorchVectorCorpusTests
{
    const string Python = "/usr/bin/python3";
    static string Script => Repo.Path("tests", "oracle", "make_vector_corpus.py");

    sealed record ManifestFile(string file, string kind, float[][] rows);

    sealed record Manifest(int hidden, ManifestFile[] files);

    static string RunScript(params string[] args)
    {
        TorchOracle.RequireTorch();
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Script);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) Assert.Fail($"make_vector_corpus.py {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}");
        return stdout.Result;
    }

    [Test]
    public void Every_file_torch_and_the_gguf_layout_wrote_reads_back_exactly()
    {
        string dir = TestModels.TempDir("vec-corpus");
        RunScript("write", dir);
        var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(Path.Combine(dir, "manifest.json")))!;
        Assert.That(manifest.files, Has.Length.EqualTo(27));
        Assert.Multiple(() =>
        {
            foreach (ManifestFile f in manifest.files)
            {
                SteeringVector v = VectorFile.Read(Path.Combine(dir, f.file));
                Assert.That(v.PerLayer, Is.EqualTo(f.kind == "per_layer"), f.file);
                Assert.That(v.Hidden, Is.EqualTo(manifest.hidden), f.file);
                Assert.That(Enumerable.Range(0, v.Rows).Select(v.Row), Is.EqualTo(f.rows), f.file);
            }
        });
    }

    [Test]
    public void Torch_numpy_and_a_gguf_reader_read_what_we_write()
    {
        string dir = TestModels.TempDir("vec-ours");
        float[] direction = Compare.RandomVector(new Random(11), 37);
        float[][] rows = Enumerable.Range(0, 6).Select(r => Compare.RandomVector(new Random(20 + r), 37)).ToArray();
        var files = new (string Name, SteeringVector Vector, float[][] Expected)[]
        {
            ("vec_ep20_layer15.pt", SteeringVector.Direction(direction), [direction]),
            ("layers.pth", SteeringVector.PerLayerSet(rows), rows),
            ("direction.npy", SteeringVector.Direction(direction), [direction]),
            ("layers.npy", SteeringVector.PerLayerSet(rows), rows),
            ("direction.safetensors", SteeringVector.Direction(direction), [direction]),
            ("layers.safetensors", SteeringVector.PerLayerSet(rows), rows),
        };
        foreach (var f in files) VectorFile.Write(Path.Combine(dir, f.Name), f.Vector);
        string gguf = Path.Combine(dir, "layers.gguf");
        VectorFile.Write(gguf, SteeringVector.PerLayerSet(rows));

        using JsonDocument doc = JsonDocument.Parse(RunScript(["load", .. files.Select(f => Path.Combine(dir, f.Name)), gguf]));
        Assert.Multiple(() =>
        {
            foreach (var f in files)
            {
                JsonElement loaded = doc.RootElement.GetProperty(Path.Combine(dir, f.Name));
                long[] shape = f.Vector.PerLayer ? [f.Expected.Length, 37] : [37];
                Assert.That(loaded.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), Is.EqualTo(shape), f.Name);
                Assert.That(loaded.GetProperty("dtype").GetString(), Is.EqualTo("torch.float32").Or.EqualTo("float32"), f.Name);
                Assert.That(loaded.GetProperty("rows").Deserialize<float[][]>(), Is.EqualTo(f.Expected), f.Name);
            }

            // repeng's layout: blocks from the last down to 1, tensor N = row N + 1.
            JsonElement g = doc.RootElement.GetProperty(gguf);
            JsonElement meta = g.GetProperty("metadata");
            Assert.That(meta.GetProperty("general.architecture").GetString(), Is.EqualTo("controlvector"));
            Assert.That(meta.GetProperty("controlvector.model_hint").GetString(), Is.EqualTo("llama"));
            Assert.That(meta.GetProperty("controlvector.layer_count").GetInt32(), Is.EqualTo(4));
            Assert.That(g.GetProperty("tensor_order").Deserialize<string[]>(), Is.EqualTo(new[] { "direction.4", "direction.3", "direction.2", "direction.1" }));
            var directions = g.GetProperty("directions");
            for (int block = 1; block <= 4; block++)
                Assert.That(directions.GetProperty($"direction.{block}").Deserialize<float[]>(), Is.EqualTo(rows[block + 1]), $"direction.{block}");
        });
    }
}
