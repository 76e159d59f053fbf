using System.Diagnostics;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;
using SteerEngine.Training;

namespace SteerEngine.Tests.Training;

/// <summary>
/// <c>steer train-bipo --backend cuda-emu</c> as a separate process: two epochs on <c>tiny</c>, killed with SIGKILL
/// after the first and resumed, give the very vectors of an uninterrupted run. The uninterrupted run recomputes every
/// block in the backward (<c>--keep-mib 0</c>), the others keep their activations (the default budget), so the same
/// bytes also say keeping changes no bit. Two pairs in one batch at layer 1 (two steered blocks) keep the emulated
/// run to a few seconds of CPU.
/// </summary>
[TestFixture]
public class TrainBipoCudaCommandTests
{
    [Test]
    public void Train_bipo_on_cuda_emu_resumed_after_kill_9_writes_the_uninterrupted_runs_vectors()
    {
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        string dir = TestModels.TempDir("cli-bipo-cuda");
        string data = Path.Combine(dir, "train.csv");
        File.WriteAllLines(data, ["question,matching,not_matching", "Question 0?,Yes,No", "Question 1?,Sure,Never"]);
        string[] args = ["train-bipo", "--model", TestModels.Get("tiny"), "--data", data, "--layer", "1", "--epochs", "2",
            "--batch-size", "2", "--warmup", "0", "--lr", "0.05", "--backend", "cuda-emu"];
        string full = Path.Combine(dir, "full"), killed = Path.Combine(dir, "killed");

        using (SteerChild p = SteerProcess.Start([.. args, "--out", full, "--keep-mib", "0"]))
        {
            Assert.That(p.WaitForExit(300_000), Is.True, "the uninterrupted run still runs");
            Assert.That(p.ExitCode, Is.EqualTo(0));
        }
        using (SteerChild p = SteerProcess.Start([.. args, "--out", killed]))
        {
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && !File.Exists(BipoTrainer.VectorPath(killed, 1, 1)) && clock.Elapsed < TimeSpan.FromMinutes(3))
                Thread.Sleep(20);
            Assert.That(p.HasExited, Is.False, "the run finished before it could be killed");
            p.Kill(); // SIGKILL: no flush, no cleanup
        }
        Assert.That(File.Exists(BipoTrainer.VectorPath(killed, 2, 1)), Is.False, "killed before the second epoch ended");
        using (SteerChild p = SteerProcess.Start([.. args, "--out", killed, "--resume"]))
        {
            Assert.That(p.WaitForExit(300_000), Is.True, "the resumed run still runs");
            Assert.That(p.ExitCode, Is.EqualTo(0));
        }
        foreach (int epoch in new[] { 1, 2 })
            foreach (string extension in new[] { ".pt", ".safetensors" })
                Assert.That(File.ReadAllBytes(BipoTrainer.VectorPath(killed, epoch, 1, extension)),
                    Is.EqualTo(File.ReadAllBytes(BipoTrainer.VectorPath(full, epoch, 1, extension))), $"epoch {epoch} {extension}");
        Assert.That(File.ReadAllLines(Path.Combine(killed, BipoTrainer.MetricsFileName)),
            Is.EqualTo(File.ReadAllLines(Path.Combine(full, BipoTrainer.MetricsFileName))));
        float[] vector = SteerEngine.Steering.VectorFile.Read(BipoTrainer.VectorPath(full, 2, 1)).ForBlock(1);
        Assert.That(vector.Any(x => x != 0), "the vector moved");
    }

}
