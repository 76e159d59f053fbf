using SteerEngine.Experiments;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>
/// generate's hook, head and condition keys in an experiment file (the demo model: 4 blocks, hidden 128, 4 heads of 32):
/// read into the study's term shape, and every misuse refused when the file is loaded, naming the key path.
/// </summary>
public class ExperimentSteeringTermTests
{
    /// <summary>A per-layer condition file [5, 128] (row i + 1 is block i's), a single vector [128], one of the wrong width and a zero one.</summary>
    static (string PerLayer, string Single, string Narrow, string Zero, SteeringVector Rows) ConditionFiles(string dir)
    {
        var random = new Random(5);
        float[] Row(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5))];
        var rows = SteeringVector.PerLayerSet([.. Enumerable.Range(0, 5).Select(_ => Row(128))]);
        string perLayer = Path.Combine(dir, "animals.safetensors"), single = Path.Combine(dir, "single.npy");
        string narrow = Path.Combine(dir, "narrow.npy"), zero = Path.Combine(dir, "zero.npy");
        VectorFile.Write(perLayer, rows);
        VectorFile.Write(single, SteeringVector.Direction(Row(128)));
        VectorFile.Write(narrow, SteeringVector.Direction(Row(64)));
        VectorFile.Write(zero, SteeringVector.Direction(new float[128]));
        return (perLayer, single, narrow, zero, rows);
    }

    /// <summary>The demo study with <paramref name="term"/> (YAML lines of generate:, two-space indented) after its samples.</summary>
    static string Study(string term, string layers = "[1, 2]")
    {
        string dir = TestModels.TempDir("experiment-term");
        ConditionFiles(dir);
        string file = DemoStudy.Write(dir);
        File.WriteAllText(file, File.ReadAllText(file).Replace("  samples: 2", "  samples: 2\n" + term).Replace("layers: [1, 2]", $"layers: {layers}"));
        return file;
    }

    static string LoadError(string term, string layers = "[1, 2]")
    {
        string file = Study(term, layers);
        var e = Assert.Throws<InvalidDataException>(() => Experiment.Load(file))!;
        Assert.That(e.Message, Does.StartWith(file + ":"), "names the file");
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
        return e.Message;
    }

    static SteeringAdd Term(string term, string layers = "[1, 2]") => Experiment.Load(Study(term, layers)).Generate.Steering.Template;

    [Test]
    public void Generate_takes_a_hook_by_its_short_or_transformer_lens_name()
    {
        Assert.That(Term("").Hook, Is.EqualTo(SteeringHook.ResidPost));
        Assert.That(Term("  hook: resid_mid").Hook, Is.EqualTo(SteeringHook.ResidMid));
        Assert.That(Term("  hook: hook_resid_mid").Hook, Is.EqualTo(SteeringHook.ResidMid));
        Assert.That(Term("  hook: blocks.2.hook_resid_mid", layers: "[2]").Hook, Is.EqualTo(SteeringHook.ResidMid));
        // The demo's heads × head_dim = 4 × 32 is its hidden size, so the study's vectors fit attn_z's whole row.
        SteeringAdd z = Term("  hook: attn_z\n  op: ablate");
        Assert.That((z.Hook, z.Head, z.Op), Is.EqualTo((SteeringHook.AttnZ, (int?)null, SteeringOp.Ablate)));
    }

    [Test]
    public void Generate_takes_a_condition_reading_a_per_layer_file_by_its_layer_or_a_single_vector()
    {
        string file = Study("  positions: response\n  condition: {vector: animals.safetensors, layer: 2, threshold: -0.25, comparator: less}");
        Experiment e = Experiment.Load(file);
        var rows = VectorFile.Read(Path.Combine(Path.GetDirectoryName(file)!, "animals.safetensors"));
        SteeringCondition c = e.Generate.Steering.Template.Condition!;
        Assert.That((c.Layer, c.Threshold, c.Comparator, c.Name), Is.EqualTo((2, -0.25f, ConditionComparator.Less, "animals")));
        Assert.That(c.Vector, Is.EqualTo(rows.Row(3)), "block 2 reads row 3 (the hidden-states numbering)");
        Assert.That(e.Generate.ConditionVector, Is.EqualTo(Path.Combine(Path.GetDirectoryName(file)!, "animals.safetensors")), "relative to the file");

        string singleFile = Study("  condition:\n    vector: single.npy\n    layer: 3\n    threshold: 0.1");
        SteeringCondition single = Experiment.Load(singleFile).Generate.Steering.Template.Condition!;
        Assert.That((single.Layer, single.Comparator), Is.EqualTo((3, ConditionComparator.Greater)), "comparator defaults to greater");
        Assert.That(single.Vector, Is.EqualTo(VectorFile.Read(Path.Combine(Path.GetDirectoryName(singleFile)!, "single.npy")).Row(0)));
    }

    [Test]
    public void Bad_hook_or_head_is_refused_naming_the_key()
    {
        Assert.That(LoadError("  hook: mlp_out"), Does.Match(@":15: generate\.hook: steering hook 'mlp_out' is not one of resid_post, resid_mid, attn_z"));
        Assert.That(LoadError("  hook: blocks.1.hook_resid_mid"), Does.Contain("generate.hook: 'blocks.1.hook_resid_mid' names block 1, but the study steers layers 1, 2"));
        Assert.That(LoadError("  head: 1"), Does.Match(@":15: generate\.head: applies to hook attn_z only, not resid_post"));
        Assert.That(LoadError("  hook: resid_mid\n  head: 1"), Does.Contain("generate.head: applies to hook attn_z only, not resid_mid"));
        Assert.That(LoadError("  hook: attn_z\n  head: one"), Does.Contain("generate.head: 'one' is not a whole number ≥ 0"));
        Assert.That(LoadError("  hook: attn_z\n  head: 4"), Does.Contain("generate.head: 4 is out of range: model demo has heads 0..3"));
        Assert.That(LoadError("  hook: attn_z\n  head: 1"), Does.Match(@":16: generate\.head: attn_z head 1 takes vectors of head_dim = 32 values on model demo, " +
                                                                      "but the study's vectors are taken at the block output and have its hidden size, 128"));
    }

    [Test]
    public void Bad_condition_is_refused_naming_the_key_path()
    {
        static string Condition(string body) => LoadError($"  condition: {{{body}}}");
        Assert.That(LoadError("  condition: animals.safetensors"), Does.Contain("generate.condition: expected a mapping with vector, layer, threshold and comparator"));
        Assert.That(Condition("vector: animals.safetensors, layer: 0, treshold: 0.1"), Does.Contain("generate.condition.treshold: unknown key"));
        Assert.That(Condition("layer: 0, threshold: 0.1"), Does.Contain("generate.condition.vector: is required"));
        Assert.That(Condition("vector: gone.npy, layer: 0, threshold: 0.1"), Does.Match(@":15: generate\.condition\.vector: .*gone\.npy: vector file not found"));
        Assert.That(Condition("vector: animals.safetensors, threshold: 0.1"), Does.Contain("generate.condition.layer: is required"));
        Assert.That(Condition("vector: animals.safetensors, layer: -1, threshold: 0.1"), Does.Contain("generate.condition.layer: '-1' is not a whole number ≥ 0"));
        Assert.That(Condition("vector: animals.safetensors, layer: 4, threshold: 0.1"), Does.Contain("generate.condition.layer: ").And.Contain("block 4 needs row 5"));
        Assert.That(Condition("vector: single.npy, layer: 4, threshold: 0.1"), Does.Contain("generate.condition.layer: 4 is out of range: model demo has blocks 0..3"));
        Assert.That(Condition("vector: animals.safetensors, layer: 0"), Does.Contain("generate.condition.threshold: is required"));
        Assert.That(Condition("vector: animals.safetensors, layer: 0, threshold: high"), Does.Contain("generate.condition.threshold: 'high' is not a number"));
        Assert.That(Condition("vector: animals.safetensors, layer: 0, threshold: 0.1, comparator: above"),
            Does.Contain("generate.condition.comparator: condition comparator 'above' is not one of greater, less"));
        Assert.That(Condition("vector: narrow.npy, layer: 0, threshold: 0.1"), Does.Contain("generate.condition.vector: holds vectors of 64 values, but model demo's hidden size is 128"));
        Assert.That(Condition("vector: zero.npy, layer: 0, threshold: 0.1"), Does.Contain("generate.condition: steering condition vector must be finite and non-zero"));
    }
}
