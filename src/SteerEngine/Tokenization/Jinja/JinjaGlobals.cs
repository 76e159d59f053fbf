using System.Globalization;
using System.Text;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// The functions every chat template can call: Jinja's range, namespace and dict, plus the two
/// transformers adds, raise_exception(message) and strftime_now(format).
/// </summary>
internal static class JinjaGlobals
{
    public static void AddTo(Scope scope, TimeProvider clock)
    {
        scope.Set("range", new JinjaCallable("range", (args, _) => Range(args)));
        scope.Set("namespace", new JinjaCallable("namespace", (args, kwargs) => Namespace(args, kwargs)));
        scope.Set("dict", new JinjaCallable("dict", (_, kwargs) => Copy(kwargs)));
        scope.Set("raise_exception", new JinjaCallable("raise_exception", (args, _) =>
            throw new JinjaRaisedException(args.Count > 0 ? JinjaValues.ToStr(args[0]) : "raise_exception() called")));
        scope.Set("strftime_now", new JinjaCallable("strftime_now", (args, _) =>
            Strftime(args.Count > 0 ? JinjaValues.ToStr(args[0]) : throw new JinjaRuntimeException("strftime_now() needs a format"), clock.GetLocalNow().DateTime)));
    }

    static List<object?> Range(List<object?> args)
    {
        (long start, long stop, long step) = args.Count switch
        {
            1 => (0L, JinjaValues.ToLong(args[0]), 1L),
            2 => (JinjaValues.ToLong(args[0]), JinjaValues.ToLong(args[1]), 1L),
            3 => (JinjaValues.ToLong(args[0]), JinjaValues.ToLong(args[1]), JinjaValues.ToLong(args[2])),
            _ => throw new JinjaRuntimeException("range() takes 1 to 3 arguments"),
        };
        if (step == 0)
            throw new JinjaRuntimeException("range() step cannot be zero");
        var result = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= 1_000_000)
                throw new JinjaRuntimeException("range() is too long");
            result.Add(i);
        }
        return result;
    }

    static JinjaNamespace Namespace(List<object?> args, JinjaDict kwargs)
    {
        var ns = new JinjaNamespace();
        if (args.Count > 0)
        {
            if (args[0] is not JinjaDict initial)
                throw new JinjaRuntimeException("namespace() takes a dict or keyword arguments");
            foreach ((string key, object? value) in initial)
                ns.Attributes[key] = value;
        }
        foreach ((string key, object? value) in kwargs)
            ns.Attributes[key] = value;
        return ns;
    }

    static JinjaDict Copy(JinjaDict source)
    {
        var copy = new JinjaDict();
        foreach ((string key, object? value) in source)
            copy[key] = value;
        return copy;
    }

    /// <summary>C's strftime for the directives Python documents, in the C locale.</summary>
    public static string Strftime(string format, DateTime time)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char d = format[++i];
            sb.Append(d switch
            {
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'b' or 'h' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'd' => time.ToString("dd", c),
                'e' => time.Day.ToString(c).PadLeft(2),
                'm' => time.ToString("MM", c),
                'y' => time.ToString("yy", c),
                'Y' => time.Year.ToString(c),
                'H' => time.ToString("HH", c),
                'I' => time.ToString("hh", c),
                'M' => time.ToString("mm", c),
                'S' => time.ToString("ss", c),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => time.DayOfYear.ToString("000", c),
                'w' => ((int)time.DayOfWeek).ToString(c),
                'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", c),
                'F' => time.ToString("yyyy-MM-dd", c),
                'T' => time.ToString("HH:mm:ss", c),
                'D' => time.ToString("MM/dd/yy", c),
                'z' or 'Z' => "",
                '%' => "%",
                _ => "%" + d,
            });
        }
        return sb.ToString();
    }
}
