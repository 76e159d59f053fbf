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
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    SteerServer _server = null!;
    ChromeDriver _browser = null!;
    string _page = "";

    [OneTimeSetUp]
    public async Task Start()
    {
        DemoFiles.RequireModel();
        HeadlessChromium.Require();
        string vectorFile = Path.Combine(TestModels.TempDir("page"), "mood.npy");
        using (LanguageModel lm = LanguageModel.Load(DemoFiles.ModelDir))
            VectorFile.Write(vectorFile, SteeringVector.Direction(
                TraitVector.MeanDifference(lm, TraitVector.ReadPairs(Path.Combine(DemoFiles.ModelDir, "mood_pairs.jsonl")), 1)));
        _server = SteerServer.Create(new ServerOptions { Models = [new ModelSource(DemoFiles.ModelDir, "demo")], Port = 0, Vectors = [$"mood={vectorFile}"] });
        await _server.StartAsync();
        _page = _server.BaseAddress.ToString().TrimEnd('/') + "/";

        _browser = HeadlessChromium.Start(1400, 760, Patience);
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
        new WebDriverWait(_browser, Patience).Until(b => b.FindElement(By.Id("server-status")).Text.Contains("vector"));
        return Send(message);
    }

    /// <summary>Sends one message to every panel of the open page and waits until each has finished.</summary>
    IReadOnlyList<IWebElement> Send(string message)
    {
        var wait = new WebDriverWait(_browser, Patience);
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

    [Test]
    public void Projections_colour_each_token_and_each_panel_keeps_its_own_conversation()
    {
        Ask("model=demo&view=split&temperature=0&max_tokens=40&projections=1&p=mood,1,-4&p=mood,1,4", "how was your day?");
        var panels = Send("tell me about the garden.");
        double[] meanProjection = new double[2];
        for (int i = 0; i < 2; i++)
        {
            Assert.That(panels[i].GetAttribute("data-state"), Is.EqualTo("done"), panels[i].Text);
            Assert.That(panels[i].FindElements(By.CssSelector(".msg.user")).Select(m => m.Text), Is.EqualTo(new[] { "how was your day?", "tell me about the garden." }));
            var answers = panels[i].FindElements(By.CssSelector(".msg.assistant"));
            Assert.That(answers, Has.Count.EqualTo(2));
            var tokens = answers[1].FindElements(By.CssSelector("span[title]"));
            Assert.That(tokens, Has.Count.GreaterThan(3), "the answer is drawn token by token");
            Assert.That(string.Concat(answers[1].FindElements(By.CssSelector("span")).Select(t => t.GetAttribute("textContent"))), Is.EqualTo(answers[1].GetAttribute("textContent")));
            Assert.That(tokens.Select(t => t.GetAttribute("style")), Is.All.Contains("color"));
            Assert.That(panels[i].FindElement(By.CssSelector(".legend")).Displayed, Is.True);
            meanProjection[i] = tokens.Average(t => double.Parse(t.GetAttribute("title")!, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.That(meanProjection[1], Is.GreaterThan(meanProjection[0]), "steering toward happy raises the projection on the happy direction");
        Assert.That(Answer(panels[0]), Is.Not.EqualTo(Answer(panels[1])));

        string shot = Path.Combine(TestContext.CurrentContext.WorkDirectory, "side-by-side-projections.png");
        _browser.GetScreenshot().SaveAsFile(shot);
        TestContext.AddTestAttachment(shot, "the split view after two messages, tokens coloured by their projection");
        TestContext.Out.WriteLine($"screenshot: {shot}");
    }
}
