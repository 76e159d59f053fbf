using NUnit.Framework;
using SteerEngine.Tokenization;
using SteerEngine.Tokenization.Jinja;

namespace SteerEngine.Tests.Tokenization;

/// <summary>The Jinja interpreter on the constructs real chat templates use, with Python's results.</summary>
[TestFixture]
public class JinjaTemplateTests
{
    static string Render(string source, Dictionary<string, object?>? variables = null) =>
        new JinjaTemplate(source).Render(variables ?? [], TimeProvider.System);

    static Dictionary<string, object?> Messages(params (string Role, string Content)[] turns) => new()
    {
        ["messages"] = turns.Select(t => new ChatMessage(t.Role, t.Content)).ToList(),
    };

    [TestCase("{{ 'a' + 'b' ~ 1 }}", "ab1")]
    [TestCase("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }}", "3 -4 1 2 1024")]
    [TestCase("{{ 7 / 2 }} {{ 4 / 2 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 1e16 }}", "3.5 2.0 0.30000000000000004 1e-05 1e+16")]
    [TestCase("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }}", "7 9 4")]
    [TestCase("{{ true }} {{ none }} {{ [1, 'a', none] }} {{ {'k': 'v'} }}", "True None [1, 'a', None] {'k': 'v'}")]
    [TestCase("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' != 'b' }} {{ 1 == 1.0 }}", "True False True True")]
    [TestCase("{{ 'ell' in 'hello' }} {{ 2 not in [1, 2] }} {{ 'k' in {'k': 1} }}", "True False True")]
    [TestCase("{{ not 1 == 2 and (0 or 'x') }}", "x")]
    [TestCase("{{ 'yes' if 0 else 'no' }}|{{ 'only' if false }}|", "no||")]
    [TestCase("{{ 'abc'[::-1] }} {{ [1, 2, 3][1:] }} {{ 'hello'[-3:] }} {{ [1, 2, 3, 4, 5][::2] }} {{ 'ab'[5:] }}", "cba [2, 3] llo [1, 3, 5] ")]
    [TestCase("{{ [1, 2, 3][-1] }} {{ 'x'.upper() }}{{ 'Y'.lower() }}", "3 Xy")]
    public void Expressions_follow_python_semantics(string source, string expected)
    {
        Assert.That(Render(source), Is.EqualTo(expected));
    }

    [TestCase("{{ '  a b  '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ '\\n\\nb\\n'.rstrip('\\n') }}", "a b|axx|\n\nb")]
    [TestCase("{{ 'a</think>b</think>c'.split('</think>')[-1] }} {{ ' a  b '.split() }} {{ 'a,b,c'.split(',', 1) }}", "c ['a', 'b'] ['a', 'b,c']")]
    [TestCase("{{ '<tool_response>x'.startswith('<tool_response>') }} {{ 'file.py'.endswith(('.js', '.py')) }}", "True True")]
    [TestCase("{{ 'aaa'.replace('a', 'b', 2) }} {{ 'hello world'.title() }} {{ ', '.join(['x', 'y']) }}", "bba Hello World x, y")]
    public void String_methods_behave_like_python(string source, string expected)
    {
        Assert.That(Render(source), Is.EqualTo(expected));
    }

    [TestCase("{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ [1, 2] | length }}", "x|AB|ab|2")]
    [TestCase("{{ missing | default('d') }} {{ '' | default('e', true) }} {{ 'v' | d('z') }}", "d e v")]
    [TestCase("{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ [3, 1, 2] | sort | join(',') }} {{ [1, 1, 2] | unique | list }}", "3 2 1,2,3 [1, 2]")]
    [TestCase("{% for k, v in {'a': 1, 'b': 2} | items %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [TestCase("{{ 5 | string + '!' }} {{ '42' | int + 1 }} {{ [1, 2, 3] | sum }} {{ -3 | abs }} {{ 2.5 | round }}", "5! 43 6 3 3.0")]
    [TestCase("{{ [{'n': 'a', 'ok': true}, {'n': 'b', 'ok': false}] | selectattr('ok') | map(attribute='n') | join }}", "a")]
    [TestCase("{{ ['a', 'code_interpreter', 'b'] | reject('equalto', 'code_interpreter') | join(', ') }}", "a, b")]
    [TestCase("{{ ['x', 'y'] | map('upper') | list }} {{ 'a\\nb' | indent(2) }}", "['X', 'Y'] a\n  b")]
    public void Filters_match_jinja(string source, string expected)
    {
        Assert.That(Render(source), Is.EqualTo(expected));
    }

    [Test]
    public void Tojson_formats_like_pythons_json_dumps()
    {
        var vars = new Dictionary<string, object?>
        {
            ["tool"] = new Dictionary<string, object?>
            {
                ["name"] = "get_weather",
                ["parameters"] = new Dictionary<string, object?> { ["city"] = "Zürich \"quoted\"\n", ["days"] = 3, ["ratio"] = 0.5, ["tags"] = new List<object?>(), ["opt"] = null },
            },
        };
        Assert.That(Render("{{ tool | tojson }}", vars),
            Is.EqualTo("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Zürich \\\"quoted\\\"\\n\", \"days\": 3, \"ratio\": 0.5, \"tags\": [], \"opt\": null}}"));
        Assert.That(Render("{{ tool | tojson(indent=2) }}", vars), Is.EqualTo(
            "{\n  \"name\": \"get_weather\",\n  \"parameters\": {\n    \"city\": \"Zürich \\\"quoted\\\"\\n\",\n    \"days\": 3,\n    \"ratio\": 0.5,\n    \"tags\": [],\n    \"opt\": null\n  }\n}"));
        Assert.That(Render("{{ 'é' | tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}"), Is.EqualTo("\"\\u00e9\" {\"a\": 2, \"b\": 1}"));
    }

    [TestCase("{{ x is defined }} {{ y is not defined }} {{ n is none }} {{ s is string }} {{ d is mapping }}", "True True True True True")]
    [TestCase("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 1 is number }} {{ 1.5 is integer }} {{ s is iterable }}", "True True True True False True")]
    [TestCase("{{ false is false }} {{ true is boolean }} {{ 'a' is in ['a'] }} {{ 'x' is equalto 'x' }} {{ d is not mapping }}", "True True True True False")]
    public void Tests_match_jinja(string source, string expected)
    {
        var vars = new Dictionary<string, object?> { ["x"] = 1, ["n"] = null, ["s"] = "str", ["d"] = new Dictionary<string, object?>() };
        Assert.That(Render(source, vars), Is.EqualTo(expected));
    }

    [Test]
    public void For_loop_exposes_loop_variables_and_filters_before_counting()
    {
        const string source = "{% for m in messages if m.role != 'system' %}"
                            + "{{ loop.index }}/{{ loop.length }}:{{ m.role }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}({{ loop.index0 }},{{ loop.revindex }}) "
                            + "{% else %}empty{% endfor %}";
        Assert.That(Render(source, Messages(("system", "s"), ("user", "u"), ("assistant", "a"))), Is.EqualTo("1/2:userF(0,2) 2/2:assistantL(1,1) "));
        Assert.That(Render(source, Messages(("system", "s"))), Is.EqualTo("empty"));
    }

    [Test]
    public void Set_inside_a_loop_does_not_leak_but_namespace_attributes_do()
    {
        const string source = "{% set count = 0 %}{% set ns = namespace(count=0, seen=false) %}"
                            + "{% for i in range(3) %}{% set count = count + 1 %}{% set ns.count = ns.count + i %}{% endfor %}"
                            + "{{ count }} {{ ns.count }} {{ ns.seen }}";
        Assert.That(Render(source), Is.EqualTo("0 3 False"));
    }

    [Test]
    public void If_elif_else_chooses_the_first_true_branch()
    {
        const string source = "{% for n in [1, 2, 3] %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %} {% endfor %}";
        Assert.That(Render(source), Is.EqualTo("one two many "));
    }

    [Test]
    public void Whitespace_control_follows_trim_and_lstrip_blocks()
    {
        const string source = "<a>\n    {% if true %}\n    body\n    {% endif %}\n<b>  {{- ' x ' -}}  <c>\n{# comment #}\n<d>\n";
        Assert.That(Render(source), Is.EqualTo("<a>\n    body\n<b> x <c>\n<d>"));
    }

    [Test]
    public void Break_continue_macros_and_set_blocks_work()
    {
        const string source = "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                            + "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %} "
                            + "{{ greet('Ann') }} {{ greet('Bob', punct='?') }} {% set block %}[{{ 1 + 1 }}]{% endset %}{{ block }}";
        Assert.That(Render(source), Is.EqualTo("02 Hi Ann! Hi Bob? [2]"));
    }

    [Test]
    public void Messages_are_dicts_with_role_and_content()
    {
        const string source = "{{ messages[0]['role'] }} {{ messages[0].content }} {{ messages | length }} {{ messages[0].missing is defined }}";
        Assert.That(Render(source, Messages(("user", "hi"))), Is.EqualTo("user hi 1 False"));
    }

    [Test]
    public void Strftime_now_reads_the_injected_clock()
    {
        var clock = new FixedClock(new DateTimeOffset(2025, 3, 9, 14, 5, 6, TimeSpan.Zero));
        string text = new JinjaTemplate("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %H:%M:%S %%') }}").Render(new Dictionary<string, object?>(), clock);
        Assert.That(text, Is.EqualTo("09 Mar 2025|Sunday March %-d 14:05:06 %"));
    }

    [Test]
    public void Raise_exception_surfaces_the_templates_message()
    {
        var e = Assert.Throws<ChatTemplateException>(() => Render("{% if true %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"));
        Assert.That(e!.Message, Is.EqualTo("Conversation roles must alternate user/assistant"));
    }

    [TestCase("{{ x | no_such_filter }}", "unknown filter 'no_such_filter'", "line 1, column 8")]
    [TestCase("line one\n{% if x is frobnicated %}{% endif %}", "unknown test 'frobnicated'", "line 2, column 12")]
    [TestCase("{% if x %}never closed", "missing {% endif %}", "line 1")]
    [TestCase("{% include 'other.jinja' %}", "unknown tag 'include'", "line 1, column 4")]
    [TestCase("{{ 'unterminated }}", "unterminated string literal", "line 1, column 4")]
    [TestCase("{{ (1 + }}", "unclosed {{ tag", "line 1, column 1")]
    [TestCase("{{ 1 + }}", "unexpected '}}'", "line 1, column 8")]
    public void Unknown_or_malformed_constructs_are_rejected_naming_the_position(string source, string problem, string position)
    {
        var e = Assert.Throws<ChatTemplateException>(() => new JinjaTemplate(source));
        Assert.That(e!.Message, Does.Contain(problem).And.Contain(position));
    }

    [TestCase("{{ 1 + 'a' }}", "unsupported operand types for +: int and str")]
    [TestCase("{{ missing.attribute }}", "'missing' is undefined")]
    [TestCase("{% set x = 1 %}{% set x.y = 2 %}", "only a namespace() object can have attributes assigned")]
    [TestCase("\n\n  {{ nothing() }}", "line 3")]
    public void Runtime_failures_name_the_problem_and_position(string source, string problem)
    {
        var e = Assert.Throws<ChatTemplateException>(() => Render(source));
        Assert.That(e!.Message, Does.Contain(problem));
    }

    sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
