using SteerEngine.Model;
using SteerEngine.Tokenization;

namespace SteerEngine.Tests.Support;

/// <summary>
/// Random-weight models written once per test run (the same directory for every test that asks
/// for the same shape and seed), under the system temp folder.
/// </summary>
public static class TestModels
{
    static readonly object Gate = new();
    static readonly string RunDir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "steer-tests-" + Environment.ProcessId);

    public static string Get(string shape, int seed = 1, DType dtype = DType.BF16)
    {
        if (TokenizerAssets.FindLlama3Directory() is null)
            Assert.Ignore("Llama 3 tokenizer files missing: run ./build.sh first");
        string dir = System.IO.Path.Combine(RunDir, $"{shape}-{seed}-{dtype}");
        lock (Gate)
        {
            if (!File.Exists(System.IO.Path.Combine(dir, "config.json")))
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, true);
                RandomModel.Write(shape, seed, dir, dtype);
            }
        }
        return dir;
    }

    public static string TempDir(string name)
    {
        string dir = System.IO.Path.Combine(RunDir, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}

[SetUpFixture]
public sealed class TestRunCleanup
{
    [OneTimeTearDown]
    public void DeleteGeneratedModels()
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "steer-tests-" + Environment.ProcessId);
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }
}
