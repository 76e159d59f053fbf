using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectre.Console;
using SteerEngine.Generation.Jobs;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tokenization;

namespace SteerEngine.Cli.Chat;

/// <summary>
/// The terminal side of <c>steer chat</c>: reads lines, sends plain ones to the model and runs the
/// slash commands, streams answers as they come, shows /compare as columns. A user error (bad
/// value, missing file) prints one line and the chat goes on. <see cref="Interrupt"/> (Ctrl-C)
/// stops the answer being generated.
/// </summary>
public sealed class ChatTerminal(ChatSession session, IAnsiConsole console, TextReader input)
{
    public const string Help = """
        plain text       send a message (the model answers with the current steering)
        /m X             steering multiplier, e.g. /m 2.5
        /layer L         decoder block (0-based) to steer and monitor
        /vector V        steering vector: a file (.pt .safetensors .gguf .npy) or a trait name (mood); /vector off
        /system TEXT     system prompt (/system alone removes it); applies from the next answer
        /reset           forget the conversation (settings stay)
        /compare A,B,C   answer the last message again at each multiplier, side by side (one batch); alone: -m,0,m
        /monitor V       colour each answer's tokens by their projection on V at the steered block; /monitor off
        /save FILE       write the conversation as JSONL
        /help            this list; /quit (or Ctrl-D) leaves; Ctrl-C stops an answer
        """;

    CancellationTokenSource? _answering;

    /// <summary>Stops the answer being generated, if any; true when there was one.</summary>
    public bool Interrupt()
    {
        CancellationTokenSource? current = _answering;
        if (current is null) return false;
        try
        {
            current.Cancel();
        }
        catch (ObjectDisposedException)
        {
            return false;   // the answer finished meanwhile
        }
        return true;
    }

    public int Run()
    {
        console.MarkupLine($"[bold]steer chat[/] [grey]{Markup.Escape(session.Model.Directory)} · /help for commands[/]");
        console.MarkupLine(Status());
        while (true)
        {
            console.Markup("[bold green]you>[/] ");
            string? line = input.ReadLine();
            if (line is null) { console.WriteLine(); return 0; }
            line = line.Trim();
            if (line.Length == 0) continue;
            try
            {
                if (!line.StartsWith('/')) Say(line);
                else if (!Command(line)) return 0;
            }
            catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                                          or IOException or UnauthorizedAccessException or ModelFormatException or ChatTemplateException)
            {
                console.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            }
        }
    }

    string Status()
    {
        string steering = session.Vector is null
            ? "unsteered"
            : $"{session.Vector.Name} · block {session.Layer} · ×{Number(session.Multiplier)} · positions {session.Settings.Positions.Name()} · op {session.Settings.Shape.Template.Op.Name()}" +
              (session.Settings.Shape.Template.Condition is { } c ? $" · if cos(prompt, {c.Name}) at block {c.Layer} {(c.Comparator == ConditionComparator.Greater ? ">" : "<")} {c.Threshold:0.#####}" : "");
        string monitor = session.Monitor is null ? "" : $" · monitoring {session.Monitor.Name}@{session.Layer}";
        return $"[grey]steering: {Markup.Escape(steering + monitor)}[/]";
    }

    static string Number(float x) => x.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>Runs one slash command; false when it ends the chat.</summary>
    bool Command(string line)
    {
        int space = line.IndexOf(' ');
        string name = (space < 0 ? line : line[..space]).ToLowerInvariant();
        string arg = space < 0 ? "" : line[(space + 1)..].Trim();
        switch (name)
        {
            case "/m" or "/multiplier":
                session.Multiplier = float.TryParse(Required(name, arg, "a number"), NumberStyles.Float, CultureInfo.InvariantCulture, out float m) && float.IsFinite(m)
                    ? m : throw new ArgumentException($"{name} '{arg}': expected a number, e.g. /m 2.5");
                if (session.Vector is null) console.MarkupLine("[yellow]no steering vector yet: /vector NAME|FILE[/]");
                break;
            case "/layer":
                session.Layer = int.TryParse(Required(name, arg, "a block index"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int l)
                    ? l : throw new ArgumentException($"/layer '{arg}': expected a whole number (the 0-based decoder block)");
                session.Vector?.ForBlock(session.Layer);   // a per-layer file without this block, say, fails here rather than at the next answer
                break;
            case "/vector":
                session.Vector = IsOff(Required(name, arg, "a file or trait name, or off")) ? null : Resolved(arg);
                break;
            case "/monitor":
                session.Monitor = IsOff(Required(name, arg, "a file or trait name, or off")) ? null : Resolved(arg);
                break;
            case "/system":
                session.System = arg.Length == 0 ? null : arg;
                console.MarkupLine(arg.Length == 0 ? "[grey]system prompt removed[/]" : "[grey]system prompt set[/]");
                return true;
            case "/reset":
                session.Reset();
                console.MarkupLine("[grey]conversation cleared[/]");
                return true;
            case "/compare":
                float strength = session.Multiplier == 0 ? 1 : Math.Abs(session.Multiplier);   // alone, /compare is −m, 0, +m
                Compare(arg.Length > 0 ? SweepValues.Multipliers(arg) : [-strength, 0, strength]);
                return true;
            case "/save":
                int lines = ChatTranscript.Save(Required(name, arg, "a file name"), session);
                console.MarkupLine($"[grey]wrote {lines} lines to {Markup.Escape(Path.GetFullPath(arg))}[/]");
                return true;
            case "/help" or "/?":
                console.WriteLine(Help);
                return true;
            case "/quit" or "/exit":
                return false;
            default:
                throw new ArgumentException($"unknown command {name} (/help lists them)");
        }
        console.MarkupLine(Status());
        return true;
    }

    static string Required(string command, string arg, string what) =>
        arg.Length > 0 ? arg : throw new ArgumentException($"{command} needs {what}");

    static bool IsOff(string arg) => arg is "off" or "none";

    ChatVector Resolved(string nameOrFile)
    {
        ChatVector v = ChatVector.Resolve(nameOrFile, session.Model);
        v.ForBlock(session.Layer);
        return v;
    }

    void Say(string message)
    {
        console.Markup("[bold blue]model>[/] ");
        var pieces = new List<string>();
        ChatReply reply = Answering(cancel => session.Answer(message, (_, token, text) =>
        {
            Piece(pieces, token, text);
            console.Write(new Text(text));
        }, cancel));
        console.WriteLine();
        if (reply.TurnsLeftOut > 0) console.MarkupLine($"[grey](the {reply.TurnsLeftOut} oldest turns were left out to fit the model's context)[/]");
        if (reply.FinishReason == "cancelled") console.MarkupLine("[grey](stopped)[/]");
        if (reply.Projections is float[] p && p.Length > 0)
        {
            console.MarkupLine(ProjectionColours.Markup(pieces, p, p.Min(), p.Max()));
            console.MarkupLine(ProjectionColours.Legend($"{session.Monitor!.Name}@{session.Layer}", p.Min(), p.Max()));
        }
    }

    void Compare(float[] multipliers)
    {
        session.CheckComparable(multipliers);
        var table = new Table().Expand();
        foreach (float m in multipliers) table.AddColumn(new TableColumn($"[bold]×{Number(m)}[/]"));
        table.AddRow(multipliers.Select(_ => (Spectre.Console.Rendering.IRenderable)new Text("")).ToArray());
        var texts = multipliers.Select(_ => new StringBuilder()).ToArray();
        var pieces = multipliers.Select(_ => new List<string>()).ToArray();
        console.MarkupLine($"[grey]{Markup.Escape($"{session.Vector?.Name} · block {session.Layer} · the last message answered at {multipliers.Length} multipliers in one batch")}[/]");
        IReadOnlyList<ChatReply> replies = [];
        // Without an interactive terminal (output to a file or pipe) the table is written once, at the end.
        bool live = console.Profile.Capabilities.Interactive;
        Action<Action<LiveDisplayContext?>> show = live ? work => console.Live(table).Start(ctx => work(ctx)) : work => { work(null); console.Write(table); };
        show(ctx =>
        {
            var sinceRefresh = Stopwatch.StartNew();
            replies = Answering(cancel => session.Compare(multipliers, (column, token, text) =>
            {
                Piece(pieces[column], token, text);
                texts[column].Append(text);
                table.UpdateCell(0, column, new Text(texts[column].ToString()));
                if (ctx is null || sinceRefresh.ElapsedMilliseconds < 50) return;
                ctx.Refresh();
                sinceRefresh.Restart();
            }, cancel));
            var monitored = replies.Where(r => r.Projections is { Length: > 0 }).SelectMany(r => r.Projections!).ToList();
            for (int c = 0; c < replies.Count; c++)
            {
                string text = replies[c].Text;
                table.UpdateCell(0, c, replies[c].Projections is { Length: > 0 } p
                    ? new Markup(ProjectionColours.Markup(pieces[c], p, monitored.Min(), monitored.Max()))
                    : new Text(text.Length > 0 ? text : "(no text)"));
            }
            ctx?.Refresh();
        });
        if (replies.Any(r => r.FinishReason == "cancelled")) console.MarkupLine("[grey](stopped)[/]");
        var all = replies.Where(r => r.Projections is { Length: > 0 }).SelectMany(r => r.Projections!).ToList();
        if (all.Count > 0) console.MarkupLine(ProjectionColours.Legend($"{session.Monitor!.Name}@{session.Layer}", all.Min(), all.Max()));
    }

    /// <summary>Records the text token <paramref name="token"/> added (pieces[i] = what token i completed).</summary>
    static void Piece(List<string> pieces, int token, string text)
    {
        while (pieces.Count <= token) pieces.Add("");
        pieces[token] += text;
    }

    T Answering<T>(Func<CancellationToken, T> answer)
    {
        using var cancel = new CancellationTokenSource();
        _answering = cancel;
        try
        {
            return answer(cancel.Token);
        }
        finally
        {
            _answering = null;
        }
    }
}
