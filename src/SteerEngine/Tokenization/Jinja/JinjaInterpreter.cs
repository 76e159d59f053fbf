using System.Text;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// Variables visible at one point of a render. A for-loop iteration and a macro call each get a
/// child scope, so <c>{% set %}</c> inside them does not leak out (the reason templates use
/// <c>namespace()</c>); if-blocks share their parent's scope, as in Jinja2.
/// </summary>
internal sealed class Scope(Scope? parent)
{
    readonly Scope? _parent = parent;
    readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);

    public object? Lookup(string name)
    {
        for (Scope? s = this; s is not null; s = s._parent)
            if (s._variables.TryGetValue(name, out object? value))
                return value;
        return new Undefined(name);
    }

    public void Set(string name, object? value) => _variables[name] = value;
}

/// <summary>Walks the parsed template, writing output; evaluates expressions with Python semantics.</summary>
internal sealed class JinjaInterpreter
{
    const int MaxMacroDepth = 64;

    enum Flow { Normal, Break, Continue }

    int _macroDepth;

    public void Render(List<Node> nodes, Scope scope, StringBuilder output)
    {
        if (Execute(nodes, scope, output) != Flow.Normal)
            throw new JinjaRuntimeException("'break' or 'continue' outside a loop");
    }

    Flow Execute(List<Node> nodes, Scope scope, StringBuilder output)
    {
        foreach (Node node in nodes)
        {
            Flow flow;
            try
            {
                flow = Execute(node, scope, output);
            }
            catch (JinjaRuntimeException e) when (e.Position < 0)
            {
                throw e.At(node.Position);
            }
            if (flow != Flow.Normal)
                return flow;
        }
        return Flow.Normal;
    }

    Flow Execute(Node node, Scope scope, StringBuilder output)
    {
        switch (node)
        {
            case TextNode text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputNode o:
                output.Append(JinjaValues.ToStr(Evaluate(o.Value, scope)));
                return Flow.Normal;
            case IfNode i:
                foreach ((Expr condition, List<Node> body) in i.Branches)
                    if (JinjaValues.IsTrue(Evaluate(condition, scope)))
                        return Execute(body, scope, output);
                return i.Else is null ? Flow.Normal : Execute(i.Else, scope, output);
            case ForNode f:
                RunLoop(f, scope, output);
                return Flow.Normal;
            case SetNode s:
                Assign(s.Target, Evaluate(s.Value, scope), scope);
                return Flow.Normal;
            case SetBlockNode sb:
                var captured = new StringBuilder();
                Render(sb.Body, scope, captured);
                scope.Set(sb.Name, captured.ToString());
                return Flow.Normal;
            case MacroNode m:
                scope.Set(m.Name, DefineMacro(m, scope));
                return Flow.Normal;
            case PassThroughNode p:
                return Execute(p.Body, scope, output);
            case FilterBlockNode fb:
                var filtered = new StringBuilder();
                Render(fb.Body, scope, filtered);
                output.Append(JinjaValues.ToStr(ApplyFilter(fb.Filter, filtered.ToString(), scope)));
                return Flow.Normal;
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            default:
                throw new JinjaRuntimeException($"cannot run {node.GetType().Name}");
        }
    }

    void RunLoop(ForNode loop, Scope scope, StringBuilder output)
    {
        List<object?> items = JinjaValues.Iterate(Evaluate(loop.Iterable, scope));
        if (loop.Filter is not null)
        {
            // Jinja filters the sequence before looping, so loop.length and loop.last count kept items only.
            items = items.Where(item =>
            {
                var test = new Scope(scope);
                Bind(loop.Targets, item, test);
                return JinjaValues.IsTrue(Evaluate(loop.Filter, test));
            }).ToList();
        }

        for (int i = 0; i < items.Count; i++)
        {
            var iteration = new Scope(scope);
            Bind(loop.Targets, items[i], iteration);
            iteration.Set("loop", LoopVariable(items, i));
            if (Execute(loop.Body, iteration, output) == Flow.Break)
                break;
        }
        if (items.Count == 0 && loop.Else is not null)
            Render(loop.Else, scope, output);
    }

    static JinjaDict LoopVariable(List<object?> items, int i) => new()
    {
        ["index"] = (long)i + 1,
        ["index0"] = (long)i,
        ["revindex"] = (long)(items.Count - i),
        ["revindex0"] = (long)(items.Count - i - 1),
        ["first"] = i == 0,
        ["last"] = i == items.Count - 1,
        ["length"] = (long)items.Count,
        ["depth"] = 1L,
        ["depth0"] = 0L,
        ["previtem"] = i > 0 ? items[i - 1] : new Undefined("previtem"),
        ["nextitem"] = i < items.Count - 1 ? items[i + 1] : new Undefined("nextitem"),
        ["cycle"] = new JinjaCallable("cycle", (args, _) =>
            args.Count == 0 ? throw new JinjaRuntimeException("loop.cycle needs at least one argument") : args[i % args.Count]),
    };

    static void Bind(List<string> targets, object? item, Scope scope)
    {
        if (targets.Count == 1)
        {
            scope.Set(targets[0], item);
            return;
        }
        List<object?> values = JinjaValues.Iterate(item);
        if (values.Count != targets.Count)
            throw new JinjaRuntimeException($"cannot unpack {values.Count} values into {targets.Count} names");
        for (int k = 0; k < targets.Count; k++)
            scope.Set(targets[k], values[k]);
    }

    void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameExpr name:
                scope.Set(name.Name, value);
                break;
            case AttributeExpr { Target: var owner } attribute:
                if (Evaluate(owner, scope) is not JinjaNamespace ns)
                    throw new JinjaRuntimeException("only a namespace() object can have attributes assigned");
                ns.Attributes[attribute.Name] = value;
                break;
            case ListExpr tuple:
                Bind(tuple.Items.Select(e => ((NameExpr)e).Name).ToList(), value, scope);
                break;
            default:
                throw new JinjaRuntimeException("cannot assign to this expression");
        }
    }

    JinjaCallable DefineMacro(MacroNode macro, Scope definedIn) => new(macro.Name, (args, kwargs) =>
    {
        if (args.Count > macro.Parameters.Count)
            throw new JinjaRuntimeException($"macro '{macro.Name}' takes {macro.Parameters.Count} arguments, got {args.Count}");
        if (++_macroDepth > MaxMacroDepth)
            throw new JinjaRuntimeException($"macro '{macro.Name}' recursed more than {MaxMacroDepth} levels");
        try
        {
            var call = new Scope(definedIn);
            for (int k = 0; k < macro.Parameters.Count; k++)
            {
                (string name, Expr? defaultValue) = macro.Parameters[k];
                object? value = k < args.Count ? args[k]
                    : kwargs.TryGetValue(name, out object? named) ? named
                    : defaultValue is null ? new Undefined(name) : Evaluate(defaultValue, call);
                call.Set(name, value);
            }
            var output = new StringBuilder();
            Render(macro.Body, call, output);
            return output.ToString();
        }
        finally
        {
            _macroDepth--;
        }
    });

    public object? Evaluate(Expr expr, Scope scope)
    {
        try
        {
            return EvaluateUnchecked(expr, scope);
        }
        catch (JinjaRuntimeException e) when (e.Position < 0)
        {
            throw e.At(expr.Position);
        }
    }

    object? EvaluateUnchecked(Expr expr, Scope scope)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return scope.Lookup(name.Name);
            case ListExpr list:
                return list.Items.Select(item => Evaluate(item, scope)).ToList();
            case DictExpr dict:
                var result = new JinjaDict();
                foreach ((Expr key, Expr value) in dict.Entries)
                    result[Evaluate(key, scope) as string ?? throw new JinjaRuntimeException("dict keys must be strings")] = Evaluate(value, scope);
                return result;
            case AttributeExpr attribute:
                return JinjaMethods.GetAttribute(Evaluate(attribute.Target, scope), attribute.Name);
            case ItemExpr item:
                return JinjaMethods.GetItem(Evaluate(item.Target, scope), Evaluate(item.Key, scope));
            case SliceExpr slice:
                return JinjaMethods.Slice(Evaluate(slice.Target, scope), OptionalInt(slice.Start, scope), OptionalInt(slice.Stop, scope), OptionalInt(slice.Step, scope));
            case CallExpr call:
                return Call(Evaluate(call.Callee, scope), call.Args, call.Kwargs, scope);
            case FilterExpr filter:
                return ApplyFilter(filter, Evaluate(filter.Value!, scope), scope);
            case TestExpr test:
                bool passed = JinjaPredicates.Test(test.Name, Evaluate(test.Value, scope), test.Args.Select(a => Evaluate(a, scope)).ToList());
                return passed != test.Negated;
            case UnaryExpr unary:
                return Unary(unary.Operator, Evaluate(unary.Operand, scope));
            case BinaryExpr { Operator: "and" } and:
                object? left = Evaluate(and.Left, scope);
                return JinjaValues.IsTrue(left) ? Evaluate(and.Right, scope) : left;
            case BinaryExpr { Operator: "or" } or:
                object? first = Evaluate(or.Left, scope);
                return JinjaValues.IsTrue(first) ? first : Evaluate(or.Right, scope);
            case BinaryExpr binary:
                return JinjaOperators.Binary(binary.Operator, Evaluate(binary.Left, scope), Evaluate(binary.Right, scope));
            case CompareExpr compare:
                object? a = Evaluate(compare.First, scope);
                foreach ((string op, Expr operand) in compare.Rest)
                {
                    object? b = Evaluate(operand, scope);
                    if (!JinjaOperators.Compare(op, a, b))
                        return false;
                    a = b;
                }
                return true;
            case ConditionalExpr conditional:
                if (JinjaValues.IsTrue(Evaluate(conditional.Condition, scope)))
                    return Evaluate(conditional.Then, scope);
                return conditional.Otherwise is null ? Undefined.Anonymous : Evaluate(conditional.Otherwise, scope);
            default:
                throw new JinjaRuntimeException($"cannot evaluate {expr.GetType().Name}");
        }
    }

    long? OptionalInt(Expr? expr, Scope scope) =>
        expr is null ? null : Evaluate(expr, scope) is { } value ? JinjaValues.ToLong(value) : null;

    object? Call(object? callee, List<Expr> args, List<(string Name, Expr Value)> kwargs, Scope scope)
    {
        var argValues = args.Select(a => Evaluate(a, scope)).ToList();
        var kwargValues = new JinjaDict();
        foreach ((string name, Expr value) in kwargs)
            kwargValues[name] = Evaluate(value, scope);
        return callee switch
        {
            JinjaCallable function => function.Invoke(argValues, kwargValues),
            Undefined u => throw new JinjaRuntimeException($"'{u.Name ?? "value"}' is undefined and cannot be called"),
            _ => throw new JinjaRuntimeException($"{JinjaValues.TypeName(callee)} object is not callable"),
        };
    }

    object? ApplyFilter(FilterExpr filter, object? value, Scope scope)
    {
        var args = filter.Args.Select(a => Evaluate(a, scope)).ToList();
        var kwargs = new JinjaDict();
        foreach ((string name, Expr v) in filter.Kwargs)
            kwargs[name] = Evaluate(v, scope);
        return JinjaFilters.Apply(filter.Name, value, args, kwargs);
    }

    static object? Unary(string op, object? operand) => op switch
    {
        "not" => !JinjaValues.IsTrue(operand),
        "-" => operand switch
        {
            long i => (object)(-i),
            double d => -d,
            bool b => b ? -1L : 0L,
            _ => throw new JinjaRuntimeException($"bad operand type for unary -: {JinjaValues.TypeName(operand)}"),
        },
        _ => JinjaValues.IsNumber(operand) ? operand : throw new JinjaRuntimeException($"bad operand type for unary +: {JinjaValues.TypeName(operand)}"),
    };
}
