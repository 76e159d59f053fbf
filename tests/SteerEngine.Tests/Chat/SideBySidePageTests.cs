using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using SteerEngine.Cli.Demo;
using SteerEngine.Model;
using SteerEngine.Server;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Chat;

/// <summary>
/// The page <c>steer serve</c> serves at <c>/</c>, in a real headless Chromium (Debian's chromium and
/// chromium-driver, driven by Selenium): on the demo model with its mood direction, a split view at
/// −4 and +4 streams both answers and the +4 panel's is the happier; a panel the server refuses (a
/// layer the model lacks) shows the server's error; per-token projections colour a panel's answer.
/// </summary>
[TestFixture, NonParallelizable]
public class SideBySidePageTests
{
    const string Chromium = "/usr/bin/chromium", ChromeDriver = "/usr/bin/chromedriver";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    SteerServer _server = null!;
    ChromeDriver _browser = null!;
    string _page = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        DemoFiles.RequireModel();
        if (!File.Exists(Chromium) || !File.Exists(ChromeDriver))
            Assert.Ignore($"{Chromium} and {ChromeDriver} are needed (./build.sh installs Debian's chromium and chromium-driver)");
        string vectorFile = Path.Combine(TestModels.TempDir("page"), "mood.npy");
        using (LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir))
            VectorFile.Write(vectorFile, SteeringVector.Direction(
                TraitVector.MeanDifference(lm, TraitVector.ReadPairs(Path.Combine(DemoFiles.ModelDir, "mood_pairs.jsonl")), 1)));
        _server = SteerServer.Create(new ServerOptions { Models = [new ModelSource(DemoFiles.ModelDir, "demo")], Port = 0, Vectors = [$"mood={vectorFile}"] });
        await _server.StartAsync();
        _page = _server.BaseAddress.ToString().TrimEnd('/') + "/";

        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,760", "--no-first-run");
        _browser = new ChromeDriver(service, options, Patience);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _browser?.Quit();
        _browser?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    /// <summary>Opens the page with the given query, sends one message and waits until every panel has finished.</summary>
    IReadOnlyList<IWebElement> Ask(string query, string message)
    {
        _browser.Navigate().GoToUrl(_page + "?" + query);
        var wait = new WebDriverWait(_browser, Patience);
        wait.Until(b => b.FindElement(By.Id("server-status")).Text.Contains("vector"));
        _browser.FindElement(By.Id("message")).SendKeys(message);
        _browser.FindElement(By.Id("send")).Click();
        wait.Until(b => b.FindElements(By.CssSelector(".panel")).All(p => p.GetAttribute("data-state") is "done" or "error"));
        return _browser.FindElements(By.CssSelector(".panel"));
    }

    static string Answer(IWebElement panel) => panel.FindElements(By.CssSelector(".msg.assistant")).Last().Text;

    [Test]
    public void Split_view_at_minus_and_plus_four_streams_both_and_the_plus_four_panel_is_happier()
    {
        var panels = Ask("model=demo&view=split&temperature=0&max_tokens=48&p=mood,1,-4&p=mood,1,4", "how was your day?");
        Assert.That(panels, Has.Count.EqualTo(2));
        Assert.That(panels.Select(p => p.GetAttribute("data-state")), Is.All.EqualTo("done"),
            string.Join(" | ", panels.Select(p => p.Text)));
        string sad = Answer(panels[0]), happy = Answer(panels[1]);
        Assert.That(sad, Is.Not.Empty);
        Assert.That(happy, Is.Not.Empty);
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        double minus = ChatSessionTests.HappyShare(language, sad), plus = ChatSessionTests.HappyShare(language, happy);
        TestContext.Out.WriteLine($"×-4 ({minus:0.00}): {sad}\n×4 ({plus:0.00}): {happy}");
        Assert.That(plus, Is.GreaterThan(minus));
        Assert.That(_browser.Url, Does.Contain("p=mood,1,-4&p=mood,1,4"), "the settings stay in the URL");

        string shot = Path.Combine(TestContext.CurrentContext.WorkDirectory, "side-by-side.png");
        _browser.GetScreenshot().SaveAsFile(shot);
        TestContext.AddTestAttachment(shot, "the split view after one message");
        TestContext.Out.WriteLine($"screenshot: {shot}");
    }

    [Test]
    public void A_panel_the_server_refuses_shows_the_error_and_the_others_answer()
    {
        var panels = Ask("model=demo&view=free&temperature=0&max_tokens=24&p=mood,1,4&p=mood,99,1", "how do you feel?");
        Assert.That(panels[0].GetAttribute("data-state"), Is.EqualTo("done"));
        Assert.That(Answer(panels[0]), Is.Not.Empty);
        Assert.That(panels[1].GetAttribute("data-state"), Is.EqualTo("error"));
        string error = panels[1].FindElement(By.CssSelector(".msg.error")).Text;
        Assert.That(error, Does.StartWith("server error:").And.Contain("layer"));
        TestContext.Out.WriteLine(error);
    }
}
