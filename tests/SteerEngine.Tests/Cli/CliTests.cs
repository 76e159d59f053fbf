using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>The `steer` command run in-process: user errors are one line on stderr and exit code 1.</summary>
[TestFixture, NonParallelizable]
public class CliTests
{
    static (int Code, string Out, string Err) Steer(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            int code = SteerEngine.Cli.Program.Main(args);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    [Test]
    public void Model_init_with_an_unknown_shape_fails_with_one_line()
    {
        var (code, _, err) = Steer("model", "init", "--shape", "huge", "--out", TestModels.TempDir("cli"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.StartWith("error: unknown model shape 'huge'").And.Not.Contain("\n"));
    }

    [Test]
    public void Generate_on_a_missing_model_directory_names_it()
    {
        var (code, _, err) = Steer("generate", "--model", "/nonexistent/model", "--prompt", "hi");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("/nonexistent/model"));
    }

    [Test]
    public void Generate_greedy_is_deterministic_and_steering_changes_it()
    {
        string model = TestModels.Get("tiny");
        string dir = TestModels.TempDir("cli");
        string vector = Path.Combine(dir, "v.npy");
        SteerEngine.Steering.VectorFile.Write(vector, SteerEngine.Steering.SteeringVector.Direction(Compare.RandomVector(new Random(1), 128, 20f)));

        var a = Steer("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "8");
        var b = Steer("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "8");
        var s = Steer("generate", "--model", model, "--prompt", "Hello", "--max-new-tokens", "8", "--vector", vector, "--layer", "2", "--multiplier", "4");
        Assert.That(a.Code, Is.EqualTo(0), a.Err);
        Assert.That(s.Code, Is.EqualTo(0), s.Err);
        Assert.That(b.Out, Is.EqualTo(a.Out));
        Assert.That(s.Out, Is.Not.EqualTo(a.Out));
    }

    [Test]
    public void Generate_with_a_vector_of_the_wrong_size_fails_clearly()
    {
        string dir = TestModels.TempDir("cli");
        string vector = Path.Combine(dir, "small.npy");
        SteerEngine.Steering.VectorFile.Write(vector, SteerEngine.Steering.SteeringVector.Direction(new float[10]));
        var (code, _, err) = Steer("generate", "--model", TestModels.Get("tiny"), "--prompt", "Hi", "--vector", vector, "--layer", "1");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("10 elements").And.Contain("128"));
    }

    [Test]
    public void Demo_json_reports_one_rate_per_multiplier()
    {
        string plot = Path.Combine(TestModels.TempDir("cli"), "sweep.png");
        var (code, output, err) = Steer("demo", "--multipliers", "-4,0,4", "--samples", "2", "--max-new-tokens", "32", "--plot", plot, "--json");
        Assert.That(code, Is.EqualTo(0), err);
        var doc = System.Text.Json.JsonDocument.Parse(output);
        double[] Values(string name) => doc.RootElement.GetProperty(name).EnumerateArray().Select(x => x.GetDouble()).ToArray();
        Assert.That(Values("multipliers"), Is.EqualTo(new[] { -4.0, 0, 4 }));
        double[] rates = Values("trait_rate");
        Assert.That(rates, Has.Length.EqualTo(3));
        Assert.That(Values("coherence"), Has.Length.EqualTo(3));
        Assert.That(rates[2], Is.GreaterThan(rates[1]));
        Assert.That(rates[1], Is.GreaterThan(rates[0]));
        Assert.That(File.ReadAllBytes(plot)[..4], Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
    }

    [Test]
    public void Demo_on_a_model_without_the_demo_language_fails_with_one_line()
    {
        var (code, _, err) = Steer("demo", "--model", TestModels.Get("tiny"), "--json");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.Contain("lexicon.json").And.Not.Contain("\n"));
    }
}
