namespace SteerEngine.Tokenization.Jinja;

/// <summary>Python's arithmetic, concatenation, comparison and membership on template values.</summary>
internal static class JinjaOperators
{
    public static object? Binary(string op, object? a, object? b)
    {
        if (op == "~")
            return JinjaValues.ToStr(a) + JinjaValues.ToStr(b);
        if (a is Undefined ua)
            throw new JinjaRuntimeException($"'{ua.Name ?? "value"}' is undefined");
        if (b is Undefined ub)
            throw new JinjaRuntimeException($"'{ub.Name ?? "value"}' is undefined");

        switch (op, a, b)
        {
            case ("+", string x, string y): return x + y;
            case ("+", List<object?> x, List<object?> y): return x.Concat(y).ToList();
            case ("*", string s, long n): return Repeat(s, n);
            case ("*", long n, string s): return Repeat(s, n);
            case ("*", List<object?> list, long n): return Enumerable.Repeat(list, (int)Math.Max(0, n)).SelectMany(l => l).ToList();
        }
        if (!JinjaValues.IsNumber(a) || !JinjaValues.IsNumber(b))
            throw new JinjaRuntimeException($"unsupported operand types for {op}: {JinjaValues.TypeName(a)} and {JinjaValues.TypeName(b)}");

        bool integers = a is not double && b is not double;
        if (integers)
        {
            long x = JinjaValues.ToLong(a), y = JinjaValues.ToLong(b);
            switch (op)
            {
                case "+": return x + y;
                case "-": return x - y;
                case "*": return x * y;
                case "//": return y == 0 ? throw DivisionByZero() : FloorDiv(x, y);
                case "%": return y == 0 ? throw DivisionByZero() : x - FloorDiv(x, y) * y;
                case "**" when y >= 0: return (long)Math.Pow(x, y);
            }
        }
        double p = JinjaValues.ToDouble(a), q = JinjaValues.ToDouble(b);
        return op switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw DivisionByZero() : p / q,
            "//" => q == 0 ? throw DivisionByZero() : Math.Floor(p / q),
            "%" => q == 0 ? throw DivisionByZero() : p - Math.Floor(p / q) * q,
            "**" => Math.Pow(p, q),
            _ => throw new JinjaRuntimeException($"unknown operator {op}"),
        };
    }

    // Python rounds integer division toward negative infinity; C# toward zero.
    static long FloorDiv(long x, long y)
    {
        long q = x / y;
        return x % y != 0 && (x < 0) != (y < 0) ? q - 1 : q;
    }

    static string Repeat(string s, long n) => n <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)n));

    static JinjaRuntimeException DivisionByZero() => new("division by zero");

    public static bool Compare(string op, object? a, object? b) => op switch
    {
        "==" => JinjaValues.AreEqual(a, b),
        "!=" => !JinjaValues.AreEqual(a, b),
        "<" => JinjaValues.Compare(a, b) < 0,
        "<=" => JinjaValues.Compare(a, b) <= 0,
        ">" => JinjaValues.Compare(a, b) > 0,
        ">=" => JinjaValues.Compare(a, b) >= 0,
        "in" => Contains(b, a),
        "not in" => !Contains(b, a),
        _ => throw new JinjaRuntimeException($"unknown comparison {op}"),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal)
            : throw new JinjaRuntimeException($"'in <string>' requires a string, not {JinjaValues.TypeName(item)}"),
        List<object?> list => list.Any(x => JinjaValues.AreEqual(x, item)),
        JinjaDict dict => item is string key && dict.ContainsKey(key),
        JinjaNamespace ns => item is string key && ns.Attributes.ContainsKey(key),
        Undefined => false,
        _ => throw new JinjaRuntimeException($"argument of type {JinjaValues.TypeName(container)} is not iterable"),
    };
}
