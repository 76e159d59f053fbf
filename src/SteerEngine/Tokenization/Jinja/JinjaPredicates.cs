namespace SteerEngine.Tokenization.Jinja;

/// <summary>Jinja's tests, the right-hand side of <c>x is defined</c>, with Python's type rules.</summary>
internal static class JinjaPredicates
{
    static readonly HashSet<string> Names =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false",
        "mapping", "iterable", "sequence", "callable", "odd", "even", "divisibleby", "equalto", "eq", "==",
        "ne", "!=", "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "in", "sameas", "lower", "upper",
    ];

    public static bool Exists(string name) => Names.Contains(name);

    public static bool Test(string name, object? value, List<object?> args) => name switch
    {
        "defined" => value is not Undefined,
        "undefined" => value is Undefined,
        "none" => value is null,
        "string" => value is string,
        "number" => value is long or double or bool,
        "integer" => value is long,
        "float" => value is double,
        "boolean" => value is bool,
        "true" => value is true,
        "false" => value is false,
        "mapping" => value is JinjaDict,
        "iterable" => value is string or List<object?> or JinjaDict or Undefined,
        "sequence" => value is string or List<object?> or JinjaDict,
        "callable" => value is JinjaCallable,
        "odd" => JinjaValues.ToLong(value) % 2 != 0,
        "even" => JinjaValues.ToLong(value) % 2 == 0,
        "divisibleby" => JinjaValues.ToLong(value) % JinjaValues.ToLong(Arg(args, name)) == 0,
        "equalto" or "eq" or "==" => JinjaValues.AreEqual(value, Arg(args, name)),
        "ne" or "!=" => !JinjaValues.AreEqual(value, Arg(args, name)),
        "lt" or "<" => JinjaValues.Compare(value, Arg(args, name)) < 0,
        "le" or "<=" => JinjaValues.Compare(value, Arg(args, name)) <= 0,
        "gt" or ">" => JinjaValues.Compare(value, Arg(args, name)) > 0,
        "ge" or ">=" => JinjaValues.Compare(value, Arg(args, name)) >= 0,
        "in" => JinjaOperators.Contains(Arg(args, name), value),
        "sameas" => SameAs(value, Arg(args, name)),
        "lower" => JinjaValues.ToStr(value) is var s && s.Any(char.IsLetter) && s == s.ToLowerInvariant(),
        "upper" => JinjaValues.ToStr(value) is var u && u.Any(char.IsLetter) && u == u.ToUpperInvariant(),
        _ => throw new JinjaRuntimeException($"unknown test '{name}'"),
    };

    // Python's "is": identity; None, True, False and small values behave as singletons.
    static bool SameAs(object? a, object? b) =>
        a is null or bool or long or Undefined ? JinjaValues.AreEqual(a, b) && a?.GetType() == b?.GetType() : ReferenceEquals(a, b);

    static object? Arg(List<object?> args, string test) =>
        args.Count > 0 ? args[0] : throw new JinjaRuntimeException($"test '{test}' needs an argument");
}
