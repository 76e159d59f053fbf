using SteerEngine.Model;
using SteerEngine.Tokenization;

namespace SteerEngine.Cli;

/// <summary>Turns the errors a user can cause into one line on stderr and exit code 1; anything else is a bug and keeps its trace.</summary>
public static class CliErrors
{
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is ModelFormatException or TokenizerFormatException or ChatTemplateException
                                      or ArgumentException or FileNotFoundException or DirectoryNotFoundException
                                      or InvalidDataException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
