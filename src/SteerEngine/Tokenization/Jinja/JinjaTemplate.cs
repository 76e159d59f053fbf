using System.Text;

namespace SteerEngine.Tokenization.Jinja;

/// <summary>
/// A parsed Jinja template, rendered as transformers renders chat templates (trim_blocks,
/// lstrip_blocks, the loop-control extension, raise_exception and strftime_now). Parsing happens
/// once in the constructor; <see cref="Render"/> can be called many times.
/// </summary>
internal sealed class JinjaTemplate
{
    readonly string _source;
    readonly List<Node> _body;

    /// <exception cref="ChatTemplateException">The source is not valid Jinja, or uses an unknown tag, filter or test.</exception>
    public JinjaTemplate(string source)
    {
        _source = source;
        try
        {
            _body = JinjaParser.Parse(JinjaLexer.Tokenize(source));
        }
        catch (JinjaSyntaxException e)
        {
            throw new ChatTemplateException($"chat template syntax error at {Where(e.Position)}: {e.Message}");
        }
    }

    public string Render(IReadOnlyDictionary<string, object?> variables, TimeProvider clock)
    {
        var scope = new Scope(null);
        JinjaGlobals.AddTo(scope, clock);
        foreach ((string name, object? value) in variables)
            scope.Set(name, JinjaValues.FromDotNet(value));

        var output = new StringBuilder();
        try
        {
            new JinjaInterpreter().Render(_body, new Scope(scope), output);
        }
        catch (JinjaRaisedException e)
        {
            throw new ChatTemplateException(e.Message);
        }
        catch (JinjaRuntimeException e)
        {
            throw new ChatTemplateException($"chat template error at {Where(e.Position)}: {e.Message}");
        }
        return output.ToString();
    }

    string Where(int position)
    {
        if (position < 0)
            return "an unknown position";
        position = Math.Min(position, _source.Length);
        int line = 1, lineStart = 0;
        for (int i = 0; i < position; i++)
        {
            if (_source[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
        }
        return $"line {line}, column {position - lineStart + 1}";
    }
}
