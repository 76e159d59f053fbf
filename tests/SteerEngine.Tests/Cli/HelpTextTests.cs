using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cli;

/// <summary>What each command's help says it accepts is what it accepts.</summary>
[TestFixture, NonParallelizable]
public class HelpTextTests
{
    static string OptionLine(string help, string option) =>
        help.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith(option + " ") || l.Contains(", " + option + " "))
        ?? throw new AssertionException($"no {option} in the help:\n{help}");

    [TestCase("generate", "--vector")]
    [TestCase("generate", "--monitor")]
    [TestCase("score", "--vector")]
    public void Vector_options_list_every_format_the_reader_takes(string command, string option)
    {
        var (code, help, _) = SteerCli.Run(command, "--help");
        Assert.That(code, Is.EqualTo(0));
        // ".pt/.pth" or ".pt, .pth": each extension as a word of its own.
        string line = OptionLine(help, option);
        foreach (string ext in VectorFile.Extensions)
            Assert.That(System.Text.RegularExpressions.Regex.IsMatch(line, System.Text.RegularExpressions.Regex.Escape(ext) + @"\b"), Is.True, $"{command} {option} help omits {ext}: {line.Trim()}");
    }

    [TestCase("bench", "--shape")]
    [TestCase("model init", "--shape")]
    public void Shape_options_list_every_shape(string command, string option)
    {
        var (code, help, _) = SteerCli.Run([.. command.Split(' '), "--help"]);
        Assert.That(code, Is.EqualTo(0));
        string line = OptionLine(help, option);
        foreach (string shape in ModelShapes.Names)
            Assert.That(line, Does.Contain(shape));
    }

    [Test]
    public void Options_that_take_a_value_say_what_it_is()
    {
        // Every option of the model-running commands has a description (the defaults alone do not say what the value means).
        foreach (string command in new[] { "generate", "score", "extract" })
        {
            var (_, help, _) = SteerCli.Run(command, "--help");
            // A line is "  --name <value> (REQUIRED)   description [default: x]": columns two or more spaces apart.
            var bare = help.Split('\n').SkipWhile(l => !l.StartsWith("Options:")).Skip(1)
                .Select(l => System.Text.RegularExpressions.Regex.Split(l.Trim(), @"\s{2,}"))
                .Where(cols => cols[0].StartsWith("--") && (cols.Length < 2 || cols[1].StartsWith("[default:")))
                .Select(cols => cols[0]).ToList();
            Assert.That(bare, Is.Empty, $"{command}: options without a description");
        }
    }
}
