using System.Globalization;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// Recursive-descent parser for the Jinja subset chat templates use. Operator precedence follows
/// Jinja2's parser: conditional, or, and, not, comparisons (incl. in / not in), + -, ~, * / // %,
/// **, unary - +, then postfix (.attr, [item], [a:b:c], call) and filters / tests, so that
/// <c>a + b | trim</c> trims only b and <c>not x is defined</c> negates the test.
/// </summary>
internal sealed class JinjaParser
{
    static readonly HashSet<string> CompareOperators = ["==", "!=", "<", "<=", ">", ">="];

    readonly List<JinjaToken> _tokens;
    int _i;

    JinjaParser(List<JinjaToken> tokens) => _tokens = tokens;

    public static List<Node> Parse(List<JinjaToken> tokens)
    {
        var parser = new JinjaParser(tokens);
        (List<Node> body, _) = parser.ParseUntil();
        return body;
    }

    JinjaToken Current => _tokens[_i];
    JinjaToken Next() => _tokens[_i++];
    bool IsOperator(string op, int ahead = 0) => _tokens[_i + ahead] is { Kind: TokenKind.Operator } t && t.Value == op;
    bool IsName(string name) => Current is { Kind: TokenKind.Name } t && t.Value == name;

    JinjaToken Expect(TokenKind kind, string? value = null)
    {
        JinjaToken t = Current;
        if (t.Kind != kind || (value is not null && t.Value != value))
            throw Fail($"expected {Describe(kind, value)}, found {Describe(t)}", t.Position);
        _i++;
        return t;
    }

    string ExpectName() => Expect(TokenKind.Name).Value;

    static string Describe(TokenKind kind, string? value) => kind switch
    {
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.Name => value is null ? "a name" : $"'{value}'",
        _ => value is null ? kind.ToString() : $"'{value}'",
    };

    static string Describe(JinjaToken t) => t.Kind switch
    {
        TokenKind.EndOfInput => "end of template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.String => "a string",
        _ => $"'{t.Value}'",
    };

    static JinjaSyntaxException Fail(string message, int position) => new(message, position);

    /// <summary>Parses nodes up to a block tag named in <paramref name="stops"/>, consuming "{% name".</summary>
    (List<Node> Body, string? Stop) ParseUntil(params string[] stops)
    {
        var body = new List<Node>();
        while (true)
        {
            JinjaToken t = Next();
            switch (t.Kind)
            {
                case TokenKind.EndOfInput:
                    if (stops.Length > 0)
                        throw Fail($"missing {{% {stops[^1]} %}}", t.Position);
                    _i--;
                    return (body, null);
                case TokenKind.Text:
                    body.Add(new TextNode(t.Position, t.Value));
                    break;
                case TokenKind.VariableBegin:
                    body.Add(new OutputNode(t.Position, ParseTuple()));
                    Expect(TokenKind.VariableEnd);
                    break;
                case TokenKind.BlockBegin:
                    JinjaToken name = Expect(TokenKind.Name);
                    if (stops.Contains(name.Value))
                        return (body, name.Value);
                    body.Add(ParseStatement(name));
                    break;
                default:
                    throw Fail($"unexpected {Describe(t)}", t.Position);
            }
        }
    }

    Node ParseStatement(JinjaToken tag)
    {
        int at = tag.Position;
        switch (tag.Value)
        {
            case "if": return ParseIf(at);
            case "for": return ParseFor(at);
            case "set": return ParseSet(at);
            case "macro": return ParseMacro(at);
            case "break":
                Expect(TokenKind.BlockEnd);
                return new BreakNode(at);
            case "continue":
                Expect(TokenKind.BlockEnd);
                return new ContinueNode(at);
            case "generation":
                Expect(TokenKind.BlockEnd);
                return new PassThroughNode(at, ParseBodyTo("endgeneration"));
            case "filter":
                var filter = ParseFilter(null, at);
                Expect(TokenKind.BlockEnd);
                return new FilterBlockNode(at, filter, ParseBodyTo("endfilter"));
            default:
                throw Fail($"unknown tag '{tag.Value}'", at);
        }
    }

    List<Node> ParseBodyTo(string end)
    {
        (List<Node> body, _) = ParseUntil(end);
        Expect(TokenKind.BlockEnd);
        return body;
    }

    IfNode ParseIf(int at)
    {
        var branches = new List<(Expr, List<Node>)>();
        Expr condition = ParseExpression();
        while (true)
        {
            Expect(TokenKind.BlockEnd);
            (List<Node> body, string? stop) = ParseUntil("elif", "else", "endif");
            branches.Add((condition, body));
            if (stop == "elif")
            {
                condition = ParseExpression();
                continue;
            }
            Expect(TokenKind.BlockEnd);
            return new IfNode(at, branches, stop == "else" ? ParseBodyTo("endif") : null);
        }
    }

    ForNode ParseFor(int at)
    {
        var targets = new List<string> { ExpectName() };
        while (IsOperator(","))
        {
            _i++;
            targets.Add(ExpectName());
        }
        Expect(TokenKind.Name, "in");
        Expr iterable = ParseExpression(withConditional: false);
        Expr? filter = null;
        if (IsName("if"))
        {
            _i++;
            filter = ParseExpression();
        }
        if (IsName("recursive"))
            throw Fail("recursive loops are not supported", Current.Position);
        Expect(TokenKind.BlockEnd);
        (List<Node> body, string? stop) = ParseUntil("else", "endfor");
        Expect(TokenKind.BlockEnd);
        return new ForNode(at, targets, iterable, filter, body, stop == "else" ? ParseBodyTo("endfor") : null);
    }

    Node ParseSet(int at)
    {
        JinjaToken first = Expect(TokenKind.Name);
        Expr target = new NameExpr(first.Position, first.Value);
        if (Current.Kind == TokenKind.BlockEnd)
        {
            _i++;
            return new SetBlockNode(at, first.Value, ParseBodyTo("endset"));
        }
        if (IsOperator("."))
        {
            _i++;
            target = new AttributeExpr(first.Position, target, ExpectName());
        }
        else if (IsOperator(","))
        {
            var names = new List<Expr> { target };
            while (IsOperator(","))
            {
                _i++;
                JinjaToken n = Expect(TokenKind.Name);
                names.Add(new NameExpr(n.Position, n.Value));
            }
            target = new ListExpr(first.Position, names, IsTuple: true);
        }
        Expect(TokenKind.Operator, "=");
        Expr value = ParseTuple();
        Expect(TokenKind.BlockEnd);
        return new SetNode(at, target, value);
    }

    MacroNode ParseMacro(int at)
    {
        string name = ExpectName();
        var parameters = new List<(string, Expr?)>();
        Expect(TokenKind.Operator, "(");
        while (!IsOperator(")"))
        {
            if (parameters.Count > 0)
                Expect(TokenKind.Operator, ",");
            string parameter = ExpectName();
            Expr? defaultValue = null;
            if (IsOperator("="))
            {
                _i++;
                defaultValue = ParseExpression();
            }
            parameters.Add((parameter, defaultValue));
        }
        _i++;
        Expect(TokenKind.BlockEnd);
        return new MacroNode(at, name, parameters, ParseBodyTo("endmacro"));
    }

    /// <summary>An expression, or several separated by commas (a tuple without parentheses).</summary>
    Expr ParseTuple()
    {
        int at = Current.Position;
        Expr first = ParseExpression();
        if (!IsOperator(","))
            return first;
        var items = new List<Expr> { first };
        while (IsOperator(","))
        {
            _i++;
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd)
                break;
            items.Add(ParseExpression());
        }
        return new ListExpr(at, items, IsTuple: true);
    }

    Expr ParseExpression(bool withConditional = true) => withConditional ? ParseConditional() : ParseOr();

    Expr ParseConditional()
    {
        Expr expr = ParseOr();
        while (IsName("if"))
        {
            int at = Next().Position;
            Expr condition = ParseOr();
            Expr? otherwise = null;
            if (IsName("else"))
            {
                _i++;
                otherwise = ParseConditional();
            }
            expr = new ConditionalExpr(at, expr, condition, otherwise);
        }
        return expr;
    }

    Expr ParseOr()
    {
        Expr left = ParseAnd();
        while (IsName("or"))
        {
            int at = Next().Position;
            left = new BinaryExpr(at, "or", left, ParseAnd());
        }
        return left;
    }

    Expr ParseAnd()
    {
        Expr left = ParseNot();
        while (IsName("and"))
        {
            int at = Next().Position;
            left = new BinaryExpr(at, "and", left, ParseNot());
        }
        return left;
    }

    Expr ParseNot()
    {
        if (IsName("not"))
        {
            int at = Next().Position;
            return new UnaryExpr(at, "not", ParseNot());
        }
        return ParseCompare();
    }

    Expr ParseCompare()
    {
        int at = Current.Position;
        Expr first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOperators.Contains(Current.Value))
                rest.Add((Next().Value, ParseMath1()));
            else if (IsName("in"))
            {
                _i++;
                rest.Add(("in", ParseMath1()));
            }
            else if (IsName("not") && _tokens[_i + 1] is { Kind: TokenKind.Name, Value: "in" })
            {
                _i += 2;
                rest.Add(("not in", ParseMath1()));
            }
            else
                break;
        }
        return rest.Count == 0 ? first : new CompareExpr(at, first, rest);
    }

    Expr ParseBinary(Func<Expr> operand, params string[] operators)
    {
        Expr left = operand();
        while (Current.Kind == TokenKind.Operator && operators.Contains(Current.Value))
        {
            JinjaToken op = Next();
            left = new BinaryExpr(op.Position, op.Value, left, operand());
        }
        return left;
    }

    Expr ParseMath1() => ParseBinary(ParseConcat, "+", "-");
    Expr ParseConcat() => ParseBinary(ParseMath2, "~");
    Expr ParseMath2() => ParseBinary(ParsePow, "*", "/", "//", "%");
    Expr ParsePow() => ParseBinary(() => ParseUnary(), "**");

    Expr ParseUnary(bool withFilter = true)
    {
        Expr node;
        if (IsOperator("-") || IsOperator("+"))
        {
            JinjaToken op = Next();
            node = new UnaryExpr(op.Position, op.Value, ParseUnary(withFilter: false));
        }
        else
            node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFiltersAndTests(node) : node;
    }

    Expr ParsePrimary()
    {
        JinjaToken t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new LiteralExpr(t.Position, true),
                    "false" or "False" => new LiteralExpr(t.Position, false),
                    "none" or "None" => new LiteralExpr(t.Position, null),
                    _ => new NameExpr(t.Position, t.Value),
                };
            case TokenKind.String:
                string text = t.Value;
                while (Current.Kind == TokenKind.String)
                    text += Next().Value; // adjacent literals concatenate, as in Python
                return new LiteralExpr(t.Position, text);
            case TokenKind.Integer:
                return long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long i)
                    ? new LiteralExpr(t.Position, i)
                    : throw Fail($"integer {t.Value} is too large", t.Position);
            case TokenKind.Float:
                return new LiteralExpr(t.Position, double.Parse(t.Value, CultureInfo.InvariantCulture));
            case TokenKind.Operator when t.Value == "(":
                if (IsOperator(")"))
                {
                    _i++;
                    return new ListExpr(t.Position, [], IsTuple: true);
                }
                Expr inner = ParseExpression();
                if (IsOperator(","))
                {
                    var items = new List<Expr> { inner };
                    while (IsOperator(","))
                    {
                        _i++;
                        if (IsOperator(")")) break;
                        items.Add(ParseExpression());
                    }
                    inner = new ListExpr(t.Position, items, IsTuple: true);
                }
                Expect(TokenKind.Operator, ")");
                return inner;
            case TokenKind.Operator when t.Value == "[":
                var list = new List<Expr>();
                while (!IsOperator("]"))
                {
                    if (list.Count > 0)
                    {
                        Expect(TokenKind.Operator, ",");
                        if (IsOperator("]")) break;
                    }
                    list.Add(ParseExpression());
                }
                _i++;
                return new ListExpr(t.Position, list, IsTuple: false);
            case TokenKind.Operator when t.Value == "{":
                var entries = new List<(Expr, Expr)>();
                while (!IsOperator("}"))
                {
                    if (entries.Count > 0)
                    {
                        Expect(TokenKind.Operator, ",");
                        if (IsOperator("}")) break;
                    }
                    Expr key = ParseExpression();
                    Expect(TokenKind.Operator, ":");
                    entries.Add((key, ParseExpression()));
                }
                _i++;
                return new DictExpr(t.Position, entries);
            default:
                throw Fail($"unexpected {Describe(t)}", t.Position);
        }
    }

    Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (IsOperator("."))
            {
                _i++;
                JinjaToken t = Next();
                node = t.Kind switch
                {
                    TokenKind.Name => new AttributeExpr(t.Position, node, t.Value),
                    TokenKind.Integer => new ItemExpr(t.Position, node, new LiteralExpr(t.Position, long.Parse(t.Value, CultureInfo.InvariantCulture))),
                    _ => throw Fail($"expected an attribute name after '.', found {Describe(t)}", t.Position),
                };
            }
            else if (IsOperator("["))
                node = ParseSubscript(node, Next().Position);
            else if (IsOperator("("))
                node = ParseCall(node);
            else
                return node;
        }
    }

    Expr ParseSubscript(Expr target, int at)
    {
        Expr? start = IsOperator(":") ? null : ParseExpression();
        if (!IsOperator(":"))
        {
            Expect(TokenKind.Operator, "]");
            return new ItemExpr(at, target, start!);
        }
        _i++;
        Expr? stop = IsOperator("]") || IsOperator(":") ? null : ParseExpression();
        Expr? step = null;
        if (IsOperator(":"))
        {
            _i++;
            if (!IsOperator("]"))
                step = ParseExpression();
        }
        Expect(TokenKind.Operator, "]");
        return new SliceExpr(at, target, start, stop, step);
    }

    CallExpr ParseCall(Expr callee)
    {
        int at = Current.Position;
        (List<Expr> args, List<(string, Expr)> kwargs) = ParseArguments();
        return new CallExpr(at, callee, args, kwargs);
    }

    (List<Expr>, List<(string, Expr)>) ParseArguments()
    {
        Expect(TokenKind.Operator, "(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!IsOperator(")"))
        {
            if (args.Count + kwargs.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
                if (IsOperator(")")) break;
            }
            if (Current.Kind == TokenKind.Name && IsOperator("=", ahead: 1))
            {
                string name = Next().Value;
                _i++;
                kwargs.Add((name, ParseExpression()));
            }
            else if (kwargs.Count > 0)
                throw Fail("positional argument after keyword argument", Current.Position);
            else
                args.Add(ParseExpression());
        }
        _i++;
        return (args, kwargs);
    }

    Expr ParseFiltersAndTests(Expr node)
    {
        while (true)
        {
            if (IsOperator("|"))
                node = ParseFilter(node, Next().Position);
            else if (IsName("is"))
                node = ParseTest(node, Next().Position);
            else if (IsOperator("("))
                node = ParseCall(node);
            else
                return node;
        }
    }

    FilterExpr ParseFilter(Expr? value, int at)
    {
        JinjaToken name = Expect(TokenKind.Name);
        if (!JinjaFilters.Exists(name.Value))
            throw Fail($"unknown filter '{name.Value}'", name.Position);
        if (!IsOperator("("))
            return new FilterExpr(at, value, name.Value, [], []);
        (List<Expr> args, List<(string, Expr)> kwargs) = ParseArguments();
        return new FilterExpr(at, value, name.Value, args, kwargs);
    }

    TestExpr ParseTest(Expr value, int at)
    {
        bool negated = false;
        if (IsName("not"))
        {
            _i++;
            negated = true;
        }
        JinjaToken name = Expect(TokenKind.Name);
        if (!JinjaPredicates.Exists(name.Value))
            throw Fail($"unknown test '{name.Value}'", name.Position);
        var args = new List<Expr>();
        if (IsOperator("("))
        {
            (args, List<(string, Expr)> kwargs) = ParseArguments();
            if (kwargs.Count > 0)
                throw Fail("tests take no keyword arguments", name.Position);
        }
        else if (Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                 || IsOperator("[") || IsOperator("{"))
        {
            if (Current.Kind != TokenKind.Name || Current.Value is not ("else" or "or" or "and" or "if" or "is" or "in" or "not"))
                args.Add(ParsePostfix(ParsePrimary()));
        }
        return new TestExpr(at, value, name.Value, args, negated);
    }
}
