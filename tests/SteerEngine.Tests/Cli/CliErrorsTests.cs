using SteerEngine.Cli;
using SteerEngine.Judging.Providers;

namespace SteerEngine.Tests.Cli;

public class CliErrorsTests
{
    static (int Code, string Stderr) Run(Func<int> action)
    {
        TextWriter saved = Console.Error;
        var err = new StringWriter();
        Console.SetError(err);
        try { return (CliErrors.Run(action), err.ToString()); }
        finally { Console.SetError(saved); }
    }

    [Test]
    public void A_remote_api_failure_inside_a_task_is_one_line_and_exit_1()
    {
        var (code, stderr) = Run(() => throw new AggregateException(new JudgeCallException("judge at http://127.0.0.1:9/v1 answered 503", 503, transient: true)));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr.Trim(), Is.EqualTo("error: judge at http://127.0.0.1:9/v1 answered 503"));
    }

    [Test]
    public void A_refused_connection_is_one_line_and_exit_1()
    {
        var (code, stderr) = Run(() => throw new HttpRequestException("Connection refused (127.0.0.1:9)"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.StartWith("error: Connection refused"));
    }

    [Test]
    public void A_bug_keeps_its_exception()
    {
        Assert.Throws<NullReferenceException>(() => CliErrors.Run(() => throw new NullReferenceException()));
    }
}
