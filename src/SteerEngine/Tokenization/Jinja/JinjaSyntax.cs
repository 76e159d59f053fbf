namespace SteerEngine.Tokenization.Jinja;

// The parsed template. Every node keeps the source offset it came from, so that a failure while
// rendering can say where in the template it happened.

internal abstract record Node(int Position);

internal sealed record TextNode(int Position, string Text) : Node(Position);
internal sealed record OutputNode(int Position, Expr Value) : Node(Position);
internal sealed record IfNode(int Position, List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else) : Node(Position);
/// <summary><c>{% for a, b in items if cond %}...{% else %}...{% endfor %}</c>.</summary>
internal sealed record ForNode(int Position, List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else) : Node(Position);
/// <summary><c>{% set target = value %}</c>; the target is a name, a namespace attribute, or a tuple of names.</summary>
internal sealed record SetNode(int Position, Expr Target, Expr Value) : Node(Position);
/// <summary><c>{% set name %}...{% endset %}</c>: the rendered body becomes the value.</summary>
internal sealed record SetBlockNode(int Position, string Name, List<Node> Body) : Node(Position);
internal sealed record MacroNode(int Position, string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body) : Node(Position);
/// <summary>A block rendered as is: <c>{% generation %}</c>, the marker transformers uses for assistant masks.</summary>
internal sealed record PassThroughNode(int Position, List<Node> Body) : Node(Position);
internal sealed record FilterBlockNode(int Position, FilterExpr Filter, List<Node> Body) : Node(Position);
internal sealed record BreakNode(int Position) : Node(Position);
internal sealed record ContinueNode(int Position) : Node(Position);

internal abstract record Expr(int Position);

internal sealed record LiteralExpr(int Position, object? Value) : Expr(Position);
internal sealed record NameExpr(int Position, string Name) : Expr(Position);
internal sealed record ListExpr(int Position, List<Expr> Items, bool IsTuple) : Expr(Position);
internal sealed record DictExpr(int Position, List<(Expr Key, Expr Value)> Entries) : Expr(Position);
internal sealed record AttributeExpr(int Position, Expr Target, string Name) : Expr(Position);
internal sealed record ItemExpr(int Position, Expr Target, Expr Key) : Expr(Position);
internal sealed record SliceExpr(int Position, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Position);
internal sealed record CallExpr(int Position, Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Position);
/// <summary><c>value | name(args)</c>; Value is null inside a filter block, where the body is the input.</summary>
internal sealed record FilterExpr(int Position, Expr? Value, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Position);
internal sealed record TestExpr(int Position, Expr Value, string Name, List<Expr> Args, bool Negated) : Expr(Position);
internal sealed record UnaryExpr(int Position, string Operator, Expr Operand) : Expr(Position);
/// <summary>Arithmetic, '~', 'and', 'or', 'in' and 'not in'.</summary>
internal sealed record BinaryExpr(int Position, string Operator, Expr Left, Expr Right) : Expr(Position);
/// <summary>A comparison chain: <c>a &lt; b &lt;= c</c> means a &lt; b and b &lt;= c.</summary>
internal sealed record CompareExpr(int Position, Expr First, List<(string Operator, Expr Operand)> Rest) : Expr(Position);
/// <summary><c>then if condition else otherwise</c>; without else an unmet condition gives undefined.</summary>
internal sealed record ConditionalExpr(int Position, Expr Then, Expr Condition, Expr? Otherwise) : Expr(Position);
