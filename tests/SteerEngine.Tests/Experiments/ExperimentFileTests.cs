using SteerEngine.Steering;
using SteerEngine.Experiments;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

public class ExperimentFileTests
{
    [Test]
    public void Demo_experiment_file_loads_with_paths_resolved_from_its_folder()
    {
        Experiment e = Experiment.Load(Repo.Path("examples", "demo-experiment.yaml"));
        Assert.That(e.Output, Is.EqualTo(Repo.Path("out", "demo-experiment")));
        Assert.That(e.Models.Single(), Is.EqualTo(new ExperimentModel("demo", Repo.Path("models", "demo"))));
        Assert.That(e.Layers, Is.EqualTo(new[] { 1, 2 }));
        Assert.That(e.Bipo.Epochs, Is.EqualTo(2));
        Assert.That(e.Generate.Multipliers, Has.Length.GreaterThanOrEqualTo(9));
        Assert.That(e.Judge!.Provider, Is.EqualTo("local:" + Repo.Path("models", "judge")));
        Assert.That(e.Judge.Tasks.Select(t => t.Name), Is.EqualTo(new[] { "happy", "coherence" }));
    }

    static string LoadError(Func<string, string> yamlEdit)
    {
        string dir = TestModels.TempDir("experiment-file");
        string file = DemoStudy.Write(dir);
        File.WriteAllText(file, yamlEdit(File.ReadAllText(file)));
        var e = Assert.Throws<InvalidDataException>(() => Experiment.Load(file))!;
        Assert.That(e.Message, Does.StartWith(file + ":"), "names the file");
        return e.Message;
    }

    [Test]
    public void Unknown_key_names_its_line_and_path()
    {
        string message = LoadError(y => y.Replace("  samples: 2", "  sampels: 2"));
        Assert.That(message, Does.Match(@":14: generate\.sampels: unknown key"));
    }

    [Test]
    public void Bad_value_names_its_line_and_key()
    {
        Assert.That(LoadError(y => y.Replace("max_new_tokens: 16", "max_new_tokens: lots")), Does.Match(@":15: generate\.max_new_tokens: 'lots' is not a whole number"));
        Assert.That(LoadError(y => y.Replace("[-4, -2, 0, 2, 4]", "\"2:-2:1\"")), Does.Match(@":13: generate\.multipliers: .*stop is below start"));
        Assert.That(LoadError(y => y.Replace("scorer: logprob}", "scorer: vibes}")), Does.Contain("judge.tasks[0].scorer: 'vibes' is not rating, pairwise or logprob"));
        Assert.That(LoadError(y => y.Replace("  tasks:", "  batch: true\n  tasks:")), Does.Contain("judge.batch: true needs provider: openai"));
    }

    [Test]
    public void Generate_takes_an_op_and_a_position_mode_with_their_parameters()
    {
        string dir = TestModels.TempDir("experiment-ops");
        string file = DemoStudy.Write(dir);
        File.WriteAllText(file, File.ReadAllText(file).Replace("  samples: 2", "  samples: 2\n  op: cap\n  hi: 0.5\n  positions: first_k\n  k: 4"));
        SteeringAdd t = Experiment.Load(file).Generate.Steering.Template;
        Assert.That((t.Op, t.Hi, t.Lo, t.Positions, t.FirstK),
            Is.EqualTo((SteeringOp.Cap, 0.5f, float.NegativeInfinity, SteeringPositions.FirstK, 4)));
    }

    [Test]
    public void Op_and_position_parameters_out_of_place_are_errors_naming_the_key()
    {
        Assert.That(LoadError(y => y.Replace("  samples: 2", "  samples: 2\n  op: scale")), Does.Contain("generate.op: steering op 'scale' is not one of"));
        Assert.That(LoadError(y => y.Replace("  samples: 2", "  samples: 2\n  value: 1")), Does.Contain("generate.value: applies to op set only, not add"));
        Assert.That(LoadError(y => y.Replace("  samples: 2", "  samples: 2\n  op: set")), Does.Contain("generate.value: is required with op set"));
        Assert.That(LoadError(y => y.Replace("  samples: 2", "  samples: 2\n  positions: tokens")), Does.Contain("generate.tokens: is required with positions tokens"));
        Assert.That(LoadError(y => y.Replace("  samples: 2", "  samples: 2\n  k: 3")), Does.Contain("generate.k: applies to positions first_k only"));
    }

    [Test]
    public void Malformed_yaml_names_its_line()
    {
        Assert.That(LoadError(y => y.Replace("    path: /", "   path: /")), Does.Match(@":6: not valid YAML"));
        Assert.That(LoadError(y => y.Replace("layers: [1, 2]", "layers: [1, 2")), Does.Match(@":\d+: not valid YAML"));
    }

    [Test]
    public void Missing_data_file_names_the_key_and_the_path()
    {
        Assert.That(LoadError(y => y.Replace("train: pairs.jsonl", "train: gone.jsonl")), Does.Match(@":8: data\.train: .*gone\.jsonl: file not found"));
    }

    [Test]
    public void Missing_section_is_named()
    {
        Assert.That(LoadError(y => y.Replace("layers: [1, 2]\n", "")), Does.Contain(": layers: is required"));
    }
}
