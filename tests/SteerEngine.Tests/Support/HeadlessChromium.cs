using OpenQA.Selenium.Chrome;

namespace SteerEngine.Tests.Support;

/// <summary>Debian's headless Chromium driven by Selenium, as the page tests use it (./build.sh installs chromium and chromium-driver).</summary>
public static class HeadlessChromium
{
    const string Chromium = "/usr/bin/chromium", Driver = "/usr/bin/chromedriver";

    /// <summary>Ignores the calling test when Chromium or its driver is missing.</summary>
    public static void Require()
    {
        if (!File.Exists(Chromium) || !File.Exists(Driver))
            Assert.Ignore($"{Chromium} and {Driver} are needed (./build.sh installs Debian's chromium and chromium-driver)");
    }

    /// <summary>A new headless browser with a window of the given size; the caller quits and disposes it.</summary>
    public static ChromeDriver Start(int width, int height, TimeSpan patience)
    {
        Require();
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", $"--window-size={width},{height}", "--no-first-run");
        return new ChromeDriver(service, options, patience);
    }
}
