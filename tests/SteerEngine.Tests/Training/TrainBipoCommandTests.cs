using SteerEngine.Tests.Support;
using SteerEngine.Training;

namespace SteerEngine.Tests.Training;

/// <summary><c>steer train-bipo</c> run in-process.</summary>
[TestFixture, NonParallelizable]
public class TrainBipoCommandTests
{
    static (int Code, string Out, string Err) Steer(params string[] args) => SteerCli.Run(args);

    static string Csv(string dir, string name, int rows)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllLines(path, new[] { "question,matching,not_matching" }
            .Concat(Enumerable.Range(0, rows).Select(i => $"Question {i}?,Yes,No")));
        return path;
    }

    [Test]
    public void Train_bipo_with_layers_writes_each_layers_vectors_then_resume_skips_them()
    {
        string model = TestModels.Get("tiny");
        string dir = TestModels.TempDir("cli-bipo");
        string data = Csv(dir, "train.csv", 4), outDir = Path.Combine(dir, "out");
        string[] args = ["train-bipo", "--model", model, "--data", data, "--test", data, "--layers", "1,2", "--epochs", "1", "--out", outDir];
        var run = Steer(args);
        Assert.That(run.Code, Is.EqualTo(0), run.Err);
        foreach (int layer in new[] { 1, 2 })
        {
            Assert.That(File.Exists(BipoTrainer.VectorPath(outDir, 1, layer)), $"layer {layer} .pt");
            Assert.That(File.Exists(BipoTrainer.VectorPath(outDir, 1, layer, ".safetensors")), $"layer {layer} .safetensors");
        }
        Assert.That(File.ReadAllLines(Path.Combine(outDir, BipoTrainer.MetricsFileName)), Has.Length.EqualTo(2));

        var again = Steer(args);
        Assert.That(again.Code, Is.EqualTo(1));
        Assert.That(again.Err.Trim(), Does.Contain("--resume").And.Not.Contain("\n"));
        var resumed = Steer([.. args, "--resume"]);
        Assert.That(resumed.Code, Is.EqualTo(0), resumed.Err);
        Assert.That(resumed.Out, Does.Contain("layer 1: complete").And.Contain("layer 2: complete"));
    }

    [Test]
    public void Train_bipo_on_a_broken_jsonl_line_fails_with_one_line_naming_it()
    {
        string model = TestModels.Get("tiny");
        string dir = TestModels.TempDir("cli-bipo");
        string data = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(data, ["""{"prompt": "a", "chosen": "b", "rejected": "c"}""", "{not json"]);
        var (code, _, err) = Steer("train-bipo", "--model", model, "--data", data, "--layer", "1", "--out", Path.Combine(dir, "out"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Does.StartWith($"error: {data}:2: not valid JSON").And.Not.Contain("\n"));
    }

    [Test]
    public void Train_bipo_with_an_unknown_kernels_value_fails_with_one_line_naming_it()
    {
        string dir = TestModels.TempDir("cli-bipo");
        string data = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(data, ["""{"prompt": "a", "chosen": "b", "rejected": "c"}"""]);
        var (code, _, err) = Steer("train-bipo", "--model", TestModels.Get("tiny"), "--data", data, "--layer", "1",
            "--out", Path.Combine(dir, "out"), "--kernels", "fastest");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Is.EqualTo("error: --kernels 'fastest' is not one of auto, native, managed, exact"));
        Assert.That(Directory.Exists(Path.Combine(dir, "out")), Is.False);
    }

    [TestCase("-1")]
    [TestCase("lots")]
    [TestCase("1.5")]
    public void Train_bipo_with_a_bad_keep_budget_fails_with_one_line_naming_it(string value)
    {
        string dir = TestModels.TempDir("cli-bipo");
        var (code, _, err) = Steer("train-bipo", "--model", TestModels.Get("tiny"), "--data", Csv(dir, "train.csv", 2), "--layer", "1",
            "--out", Path.Combine(dir, "out"), "--backend", "cuda-emu", "--keep-mib", value);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Is.EqualTo($"error: --keep-mib {value}: must be auto or a whole number of MiB between 0 and {long.MaxValue >> 20}"));
        Assert.That(Directory.Exists(Path.Combine(dir, "out")), Is.False);
    }

    [TestCase("cpu", "keep budget (auto): 1024 MiB of host memory")]
    [TestCase("cuda-emu", "keep budget (auto): ")]
    public void Train_bipo_keep_auto_says_once_what_budget_and_blocks_it_chose(string backend, string line)
    {
        if (backend == "cuda-emu" && !SteerEngine.Runtime.Cuda.EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.TempDir("cli-bipo");
        var (code, output, err) = Steer("train-bipo", "--model", TestModels.Get("tiny"), "--data", Csv(dir, "train.csv", 2), "--layer", "1",
            "--epochs", "1", "--batch-size", "2", "--out", Path.Combine(dir, "out"), "--backend", backend, "--keep-mib", "auto");
        Assert.That(code, Is.EqualTo(0), err);
        string[] said = output.Split('\n').Where(l => l.StartsWith("keep budget")).ToArray();
        Assert.That(said, Has.Length.EqualTo(1));
        Assert.That(said[0], Does.StartWith(line));
        // tiny at layer 1 steers two blocks; an 80 GiB emulated device has room to keep the lower one beside the top one.
        if (backend == "cuda-emu") Assert.That(said[0], Does.Match(@"MiB per device at the last training batch, which kept the activations of the lowest 1 steered blocks and the top one"));
    }

    [TestCase("cpu", "2", "1", "error: the cpu backend runs on one process's threads (use --tp 1 --dp 1)")]
    [TestCase("cuda-emu", "1", "0", "error: --dp 0: data parallelism must be at least 1")]
    [TestCase("gpu", "1", "1", "error: backend 'gpu' is not one of cpu, cuda, cuda-emu")]
    [TestCase("cuda", "1", "1", "error: --backend cuda: no NVIDIA driver here (libcuda.so.1 cannot be loaded); --backend cuda-emu runs the same path on the CPU emulator")]
    public void Train_bipo_with_a_backend_it_cannot_run_fails_with_one_line_naming_it(string backend, string tp, string dp, string message)
    {
        if (backend == "cuda" && File.Exists("/usr/lib/x86_64-linux-gnu/libcuda.so.1")) Assert.Ignore("this machine has an NVIDIA driver");
        string dir = TestModels.TempDir("cli-bipo");
        var (code, _, err) = SteerCli.RunWithThisMachinesDriver("train-bipo", "--model", TestModels.Get("tiny"), "--data", Csv(dir, "train.csv", 2), "--layer", "1",
            "--out", Path.Combine(dir, "out"), "--backend", backend, "--tp", tp, "--dp", dp);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err.Trim(), Is.EqualTo(message));
        Assert.That(Directory.Exists(Path.Combine(dir, "out")), Is.False);
    }
}
