using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using SteerEngine.Experiments.Report;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Experiments;

/// <summary>The report page opened in real headless Chromium (Debian chromium + chromium-driver, installed by build.sh).</summary>
public class ReportPageBrowserTests
{
    [Test]
    public void Report_page_loads_offline_and_every_image_loads()
    {
        HeadlessChromium.Require();
        string root = TestModels.TempDir("study-page");
        StudyTreeBuilder.Write(root);
        ReportResult result = StudyReport.Write(root, Path.Combine(root, "report"), new RankingOptions { Trait = "happy" });

        using var browser = HeadlessChromium.Start(1200, 900, TimeSpan.FromSeconds(60));
        browser.Navigate().GoToUrl(new Uri(result.IndexPath).AbsoluteUri);

        Assert.That(browser.Title, Is.EqualTo("Steering study report"));
        var images = browser.FindElements(By.TagName("img"));
        Assert.That(images, Has.Count.EqualTo(result.Figures.Count));
        var js = (IJavaScriptExecutor)browser;
        foreach (IWebElement img in images)
        {
            bool loaded = (bool)js.ExecuteScript("return arguments[0].complete && arguments[0].naturalWidth > 0;", img)!;
            Assert.That(loaded, $"image {img.GetAttribute("src")} did not load");
        }
        Assert.That(browser.FindElements(By.TagName("table")), Has.Count.EqualTo(result.Tables.Count));
        Assert.That(browser.FindElement(By.TagName("pre")).Text, Does.Contain("known-scores"));
        string screenshot = Path.Combine(root, "page.png");
        ((ITakesScreenshot)browser).GetScreenshot().SaveAsFile(screenshot);
        TestContext.Out.WriteLine($"screenshot: {screenshot}");
    }
}
