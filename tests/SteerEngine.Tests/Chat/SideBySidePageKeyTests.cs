using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using SteerEngine.Server;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Chat;

/// <summary>
/// The side-by-side page against <c>steer serve --api-key</c>, in headless Chromium: the page asks for
/// the key when the server answers 401, says so when the key is wrong, and with the right key lists
/// the models and streams an answer.
/// </summary>
[TestFixture, NonParallelizable]
public class SideBySidePageKeyTests
{
    const string Key = "page-test-key";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    SteerServer _server = null!;
    ChromeDriver _browser = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        DemoFiles.RequireModel();
        HeadlessChromium.Require();
        _server = SteerServer.Create(new ServerOptions { Models = [new ModelSource(DemoFiles.ModelDir, "demo")], Port = 0, ApiKey = Key });
        await _server.StartAsync();
        _browser = HeadlessChromium.Start(1400, 760, Patience);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _browser?.Quit();
        _browser?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
    }

    string Status() => _browser.FindElement(By.Id("server-status")).Text;

    void EnterKey(string key)
    {
        IWebElement field = _browser.FindElement(By.Id("api-key"));
        field.Clear();
        field.SendKeys(key + Keys.Enter);
    }

    [Test]
    public void The_page_asks_for_the_key_refuses_a_wrong_one_and_answers_with_the_right_one()
    {
        var wait = new WebDriverWait(_browser, Patience);
        _browser.Navigate().GoToUrl(_server.BaseAddress.ToString().TrimEnd('/') + "/?model=demo&view=free&temperature=0&max_tokens=16&p=none");
        wait.Until(_ => Status().Contains("API key"));
        Assert.That(_browser.FindElement(By.Id("key-field")).Displayed, Is.True, "the key field shows after a 401");
        Assert.That(Status(), Is.EqualTo("this server needs an API key"));

        EnterKey("wrong");
        wait.Until(_ => Status().Contains("refused"));
        Assert.That(_browser.FindElement(By.Id("key-field")).Displayed, Is.True);

        EnterKey(Key);
        wait.Until(_ => Status().Contains("model(s)"));
        Assert.That(_browser.FindElement(By.Id("key-field")).Displayed, Is.False, "the field hides once the server answers");
        Assert.That(_browser.FindElements(By.CssSelector("#model option")).Select(o => o.Text), Does.Contain("demo"));
        Assert.That(_browser.Url, Does.Not.Contain(Key), "the key stays out of the shareable URL");

        _browser.FindElement(By.Id("message")).SendKeys("how was your day?");
        _browser.FindElement(By.Id("send")).Click();
        wait.Until(b => b.FindElements(By.CssSelector(".panel")).All(p => p.GetAttribute("data-state") is "done" or "error"));
        IWebElement panel = _browser.FindElements(By.CssSelector(".panel")).Single();
        Assert.That(panel.GetAttribute("data-state"), Is.EqualTo("done"), panel.Text);
        Assert.That(panel.FindElements(By.CssSelector(".msg.assistant")).Last().Text, Is.Not.Empty);
    }
}
