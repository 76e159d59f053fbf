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
        catch (Exception e) when (UserError(e) is Exception user)
        {
            Console.Error.WriteLine($"error: {user.Message}");
            return 1;
        }
    }

    /// <summary>The error a user caused (bad input, a file, a remote API that failed), unwrapped from a task's aggregate; null for a bug.</summary>
    static Exception? UserError(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a) return UserError(a.InnerExceptions[0]);
        return e is ModelFormatException or TokenizerFormatException or ChatTemplateException
                 or ArgumentException or FileNotFoundException or DirectoryNotFoundException
                 or InvalidDataException or IOException or UnauthorizedAccessException
                 or Judging.Providers.JudgeCallException or HttpRequestException
            ? e : null;
    }
}
