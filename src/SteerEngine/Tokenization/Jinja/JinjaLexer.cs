using System.Globalization;
using System.Text;

namespace SteerEngine.Tokenization.Jinja;

internal enum TokenKind { Text, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, EndOfInput }

/// <summary>One lexeme; <see cref="Position"/> is its offset in the template source, for error messages.</summary>
internal readonly record struct JinjaToken(TokenKind Kind, string Value, int Position);

/// <summary>
/// Splits a template into text and tag tokens with the whitespace rules Hugging Face renders chat
/// templates under: trim_blocks and lstrip_blocks on, one trailing newline dropped, and the
/// <c>{%- -%}</c> / <c>{{- -}}</c> / <c>{#- -#}</c> markers stripping all whitespace on their side.
/// </summary>
internal sealed class JinjaLexer
{
    static readonly string[] Operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    readonly string _source;
    readonly List<JinjaToken> _tokens = [];
    int _pos;

    JinjaLexer(string source)
    {
        if (source.EndsWith("\r\n", StringComparison.Ordinal)) source = source[..^2];
        else if (source.EndsWith('\n') || source.EndsWith('\r')) source = source[..^1];
        _source = source;
    }

    public static List<JinjaToken> Tokenize(string source)
    {
        var lexer = new JinjaLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    void Run()
    {
        while (_pos < _source.Length)
        {
            int tag = FindTagStart(_pos);
            int textEnd = tag < 0 ? _source.Length : tag;
            char kind = tag < 0 ? '\0' : _source[tag + 1];
            char modifier = tag >= 0 && tag + 2 < _source.Length ? _source[tag + 2] : '\0';

            int keepUntil = textEnd;
            if (modifier == '-')
                keepUntil = TrimEndWhitespace(_pos, textEnd);
            else if (kind is '%' or '#' && modifier != '+')
                keepUntil = LstripBlock(_pos, textEnd);
            if (keepUntil > _pos)
                _tokens.Add(new JinjaToken(TokenKind.Text, _source[_pos..keepUntil], _pos));
            if (tag < 0)
                break;

            _pos = tag + 2 + (modifier is '-' or '+' ? 1 : 0);
            bool stripAfter = kind switch
            {
                '#' => LexComment(tag),
                '%' => LexTag(tag, TokenKind.BlockBegin, TokenKind.BlockEnd, '%'),
                _ => LexTag(tag, TokenKind.VariableBegin, TokenKind.VariableEnd, '}'),
            };
            if (stripAfter)
                while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos])) _pos++;
            else if (kind is '%' or '#' && _pos < _source.Length && _source[_pos] == '\n')
                _pos++; // trim_blocks
        }
        _tokens.Add(new JinjaToken(TokenKind.EndOfInput, "", _source.Length));
    }

    int FindTagStart(int from)
    {
        for (int i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
            if (_source[i + 1] is '{' or '%' or '#')
                return i;
        return -1;
    }

    int TrimEndWhitespace(int start, int end)
    {
        while (end > start && char.IsWhiteSpace(_source[end - 1])) end--;
        return end;
    }

    // lstrip_blocks: spaces and tabs between the start of a line and a block tag are dropped.
    int LstripBlock(int start, int end)
    {
        int i = end;
        while (i > start && _source[i - 1] is ' ' or '\t') i--;
        bool atLineStart = i == 0 || _source[i - 1] == '\n';
        return atLineStart ? i : end;
    }

    bool LexComment(int tagStart)
    {
        int close = _source.IndexOf("#}", _pos, StringComparison.Ordinal);
        if (close < 0)
            throw new JinjaSyntaxException("unclosed comment", tagStart);
        _pos = close + 2;
        return close > 0 && _source[close - 1] == '-';
    }

    /// <summary>Lexes the inside of a {{ }} or {% %} tag; returns whether it closed with '-'.</summary>
    bool LexTag(int tagStart, TokenKind begin, TokenKind end, char closer)
    {
        _tokens.Add(new JinjaToken(begin, "", tagStart));
        int depth = 0; // brackets open inside the tag: "}}" closes a dict literal there, not the tag
        while (true)
        {
            while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos])) _pos++;
            if (_pos >= _source.Length)
                throw new JinjaSyntaxException(begin == TokenKind.BlockBegin ? "unclosed {% tag" : "unclosed {{ tag", tagStart);

            if (depth == 0)
            {
                bool dash = _source[_pos] == '-' && At(_pos + 1, closer) && At(_pos + 2, '}');
                if (dash || (At(_pos, closer) && At(_pos + 1, '}')))
                {
                    _tokens.Add(new JinjaToken(end, "", _pos));
                    _pos += dash ? 3 : 2;
                    return dash;
                }
            }

            char c = _source[_pos];
            if (char.IsAsciiLetter(c) || c == '_')
                LexName();
            else if (char.IsAsciiDigit(c))
                LexNumber();
            else if (c is '\'' or '"')
                LexString(c);
            else
            {
                string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(_source, _pos, o, 0, o.Length) == 0);
                if (op is null)
                    throw new JinjaSyntaxException($"unexpected character '{c}'", _pos);
                if (op is "(" or "[" or "{") depth++;
                else if (op is ")" or "]" or "}") depth = Math.Max(0, depth - 1);
                _tokens.Add(new JinjaToken(TokenKind.Operator, op, _pos));
                _pos += op.Length;
            }
        }
    }

    bool At(int i, char c) => i < _source.Length && _source[i] == c;

    void LexName()
    {
        int start = _pos;
        while (_pos < _source.Length && (char.IsAsciiLetterOrDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        _tokens.Add(new JinjaToken(TokenKind.Name, _source[start.._pos], start));
    }

    void LexNumber()
    {
        int start = _pos;
        while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        bool isFloat = false;
        if (At(_pos, '.') && _pos + 1 < _source.Length && char.IsAsciiDigit(_source[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            while (_pos < _source.Length && (char.IsAsciiDigit(_source[_pos]) || _source[_pos] == '_')) _pos++;
        }
        if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
        {
            int save = _pos++;
            if (_pos < _source.Length && _source[_pos] is '+' or '-') _pos++;
            if (_pos < _source.Length && char.IsAsciiDigit(_source[_pos]))
            {
                isFloat = true;
                while (_pos < _source.Length && char.IsAsciiDigit(_source[_pos])) _pos++;
            }
            else _pos = save;
        }
        string text = _source[start.._pos].Replace("_", "");
        _tokens.Add(new JinjaToken(isFloat ? TokenKind.Float : TokenKind.Integer, text, start));
    }

    // Python string-literal escapes, as Jinja decodes them.
    void LexString(char quote)
    {
        int start = _pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _source.Length)
                throw new JinjaSyntaxException("unterminated string literal", start);
            char c = _source[_pos++];
            if (c == quote)
                break;
            if (c != '\\' || _pos >= _source.Length)
            {
                sb.Append(c);
                continue;
            }
            char e = _source[_pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '0': sb.Append('\0'); break;
                case '\\': case '\'': case '"': sb.Append(e); break;
                case '\n': break;
                case 'x': sb.Append((char)ParseHex(2)); break;
                case 'u': sb.Append((char)ParseHex(4)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(ParseHex(8))); break;
                default: sb.Append('\\').Append(e); break;
            }
        }
        _tokens.Add(new JinjaToken(TokenKind.String, sb.ToString(), start));
    }

    int ParseHex(int digits)
    {
        if (_pos + digits > _source.Length || !int.TryParse(_source.AsSpan(_pos, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int value))
            throw new JinjaSyntaxException("bad escape sequence in string literal", _pos);
        _pos += digits;
        return value;
    }
}

/// <summary>A template is not valid Jinja; <see cref="Position"/> is the source offset of the problem.</summary>
internal sealed class JinjaSyntaxException(string message, int position) : Exception(message)
{
    public int Position { get; } = position;
}
