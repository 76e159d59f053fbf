using SteerEngine.Model;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Model;

[TestFixture]
public class RandomModelTests
{
    [Test]
    public void The_same_seed_writes_identical_weights_and_another_seed_does_not()
    {
        string a = TestModels.Get("qwen3-tiny", seed: 7);
        string b = TestModels.TempDir("again");
        RandomModel.Write("qwen3-tiny", 7, b);
        string c = TestModels.TempDir("other");
        RandomModel.Write("qwen3-tiny", 8, c);
        byte[] wa = File.ReadAllBytes(Path.Combine(a, "model.safetensors"));
        Assert.That(File.ReadAllBytes(Path.Combine(b, "model.safetensors")), Is.EqualTo(wa));
        Assert.That(File.ReadAllBytes(Path.Combine(c, "model.safetensors")), Is.Not.EqualTo(wa));
    }

    [TestCase("tiny")]
    [TestCase("qwen3-tiny")]
    public void Generated_model_has_the_hf_layout_and_loads(string shape)
    {
        string dir = TestModels.Get(shape);
        foreach (string f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.That(File.Exists(Path.Combine(dir, f)), f);
        using var lm = LanguageModel.Load(dir);
        Assert.That(lm.Config.ModelType, Is.EqualTo(shape == "tiny" ? "llama" : "qwen3"));
        Assert.That(lm.Tokenizer.VocabSize, Is.LessThanOrEqualTo(lm.Config.VocabSize));
    }

    [Test]
    public void Processes_asking_for_the_same_cached_model_at_once_get_one_complete_copy()
    {
        string root = TestModels.TempDir("cached"), dir = Path.Combine(root, "qwen3-tiny-seed3");
        int announced = 0;
        var askers = Enumerable.Range(0, 3).Select(_ => Task.Run(() =>
            RandomModel.Cached(ModelShapes.Get("qwen3-tiny"), 3, dir, _ => Interlocked.Increment(ref announced)))).ToArray();
        Task.WaitAll(askers);
        Assert.That(askers.Select(a => a.Result), Is.All.EqualTo(dir));
        Assert.That(Directory.GetDirectories(root), Is.EqualTo(new[] { dir }), "no partial copies are left behind");
        string fresh = TestModels.TempDir("cached-direct");
        RandomModel.Write("qwen3-tiny", 3, fresh);
        Assert.That(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(fresh, "model.safetensors"))));
        Assert.That(announced, Is.InRange(1, 3));
        int before = announced;
        RandomModel.Cached(ModelShapes.Get("qwen3-tiny"), 3, dir, _ => Interlocked.Increment(ref announced));
        Assert.That(announced, Is.EqualTo(before), "a complete model is not written again");
    }

    [Test]
    public void Unknown_shape_lists_the_known_ones() =>
        Assert.That(() => RandomModel.Write("gpt-5", 0, TestModels.TempDir("x")),
            Throws.ArgumentException.With.Message.Contains("tiny").And.Message.Contains("llama-3.1-8b"));
}
