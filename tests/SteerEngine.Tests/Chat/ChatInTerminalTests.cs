using System.Text.RegularExpressions;
using SteerEngine.Cli.Demo;
using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Chat;

/// <summary>
/// <c>steer chat</c> as a user meets it: the real program in a pseudo-terminal (tmux), keys typed,
/// the screen read back. On the demo model with its mood direction: /m, /compare and /reset behave,
/// the happy share rises across the /compare columns, and Ctrl-C stops an answer, not the program.
/// </summary>
[TestFixture, NonParallelizable]
public class ChatInTerminalTests
{
    static string Chat(string extra) =>
        $"dotnet '{Path.Combine(AppContext.BaseDirectory, "steer.dll")}' chat --model '{DemoFiles.ModelDir}' --vector mood {extra}";

    static int Prompts(string screen) => Regex.Matches(screen, "you>").Count;

    [Test]
    public void Compare_columns_grow_happier_with_the_multiplier_and_reset_forgets()
    {
        DemoFiles.RequireModel();
        using var terminal = new TerminalSession(Chat("--temperature 0 --max-new-tokens 48"));
        terminal.WaitFor(s => Prompts(s) == 1, "the first prompt");
        terminal.SendLine("how was your day?");
        string screen = terminal.WaitFor(s => Prompts(s) == 2, "the first answer");
        Assert.That(screen, Does.Match(@"model> \S+"));

        terminal.SendLine("/m 4");
        terminal.WaitFor(s => s.Contains("×4 · positions all"), "the new multiplier in the status line");
        terminal.SendLine("/compare -4,-2,0,2,4");
        screen = terminal.WaitFor(s => Prompts(s) == 4, "the /compare table");
        string[] columns = TableColumns(screen);
        TestContext.Out.WriteLine(screen);
        Assert.That(columns, Has.Length.EqualTo(5));
        Assert.That(columns.Select(c => c.Split('\n')[0].Trim()), Is.EqualTo(new[] { "×-4", "×-2", "×0", "×2", "×4" }));
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        double[] happy = columns.Select(c => ChatSessionTests.HappyShare(language, c[(c.IndexOf('\n') + 1)..])).ToArray();
        TestContext.Out.WriteLine("happy share per column: " + string.Join(", ", happy.Select(h => h.ToString("0.00"))));
        for (int i = 1; i < happy.Length; i++) Assert.That(happy[i], Is.GreaterThanOrEqualTo(happy[i - 1]), string.Join(", ", happy));
        Assert.That(happy[^1] - happy[0], Is.GreaterThan(0.5));

        terminal.SendKey("C-c");   // at the prompt: a reminder, the chat stays
        terminal.WaitFor(s => s.Contains("(Ctrl-D or /quit leaves the chat)"), "the Ctrl-C reminder");
        terminal.SendLine("/reset");
        terminal.WaitFor(s => s.Contains("conversation cleared"), "/reset");
        terminal.SendLine("/compare -1,1");
        terminal.WaitFor(s => s.Contains("error: nothing to compare yet"), "/compare after /reset");
        terminal.SendLine("/quit");
        terminal.WaitFor(s => s.Contains("[exit 0]"), "the chat to end");
    }

    [Test]
    public void Ctrl_c_stops_the_answer_and_the_chat_goes_on()
    {
        DemoFiles.RequireModel();
        // The CUDA backend on the CPU emulator writes a few tokens a second: slow enough to interrupt mid-answer.
        if (!EmulatedCudaDevice.IsAvailable) Assert.Ignore("native/cuemu is not built (run ./build.sh)");
        using var terminal = new TerminalSession(Chat("--backend cuda-emu --max-new-tokens 200 --temperature 1.5"));
        terminal.WaitFor(s => Prompts(s) == 1, "the first prompt", seconds: 120);
        terminal.SendLine("how was your day?");
        terminal.WaitFor(s => Regex.IsMatch(s, @"model> \S+"), "the answer to start");
        terminal.SendKey("C-c");
        string screen = terminal.WaitFor(s => Prompts(s) == 2, "the next prompt");
        Assert.That(screen, Does.Contain("(stopped)"));
        terminal.SendLine("/m 2");
        terminal.WaitFor(s => s.Contains("×2 · positions all"), "the chat to take the next command");
        terminal.SendLine("/quit");
        terminal.WaitFor(s => s.Contains("[exit 0]"), "the chat to end");
    }

    /// <summary>The last table on the screen, one string per column: its cells' lines joined, header first.</summary>
    static string[] TableColumns(string screen)
    {
        string[] lines = screen.Split('\n');
        int top = Array.FindLastIndex(lines, l => l.TrimStart().StartsWith('┌'));
        Assert.That(top, Is.GreaterThanOrEqualTo(0), "no table on the screen:\n" + screen);
        var columns = new List<List<string>>();
        for (int i = top + 1; i < lines.Length && !lines[i].TrimStart().StartsWith('└'); i++)
        {
            if (!lines[i].TrimStart().StartsWith('│')) continue;
            string[] cells = lines[i].Trim().Trim('│').Split('│');
            while (columns.Count < cells.Length) columns.Add([]);
            for (int c = 0; c < cells.Length; c++) columns[c].Add(cells[c].Trim());
        }
        // The header's line, then the cell's lines joined by spaces.
        return columns.Select(c => c[0] + "\n" + string.Join(' ', c.Skip(1))).ToArray();
    }
}
