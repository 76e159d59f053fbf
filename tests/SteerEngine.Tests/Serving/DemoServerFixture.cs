using SteerEngine.Model;
using SteerEngine.Tests.Demo;

namespace SteerEngine.Tests.Serving;

/// <summary>One real server on the demo model per fixture, and the same model loaded in-process to compare against.</summary>
public abstract class DemoServerFixture
{
    protected TestServer Server { get; private set; } = null!;
    protected LanguageModel Lm { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        Server = await TestServer.Start();
        Lm = LanguageModel.Load(DemoFiles.ModelDir);
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        await Server.DisposeAsync();
        Lm.Dispose();
    }
}
