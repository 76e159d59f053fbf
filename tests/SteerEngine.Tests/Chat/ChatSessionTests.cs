using System.Text.Json;
using System.Text.RegularExpressions;
using Spectre.Console;
using SteerEngine.Cli.Chat;
using SteerEngine.Cli.Demo;
using SteerEngine.Generation;
using SteerEngine.Model;
using SteerEngine.Steering;
using SteerEngine.Tests.Demo;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Chat;

/// <summary>
/// <c>steer chat</c>'s conversation logic on the demo model (greedy, so every answer is reproducible):
/// history through the chat template, streaming, /compare as one batch, cancellation, the context
/// limit, /save, and the terminal's handling of commands and errors.
/// </summary>
[TestFixture]
public class ChatSessionTests
{
    LanguageModel _lm = null!;
    static readonly ChatSettings Greedy = new(64, new SamplingOptions(0f), 0, SteeringTermShape.Default);

    [OneTimeSetUp]
    public void Load()
    {
        DemoFiles.RequireModel();
        _lm = LanguageModel.Load(DemoFiles.ModelDir);
    }

    [OneTimeTearDown]
    public void Unload() => _lm.Dispose();

    ChatSession Session() => new(_lm, Greedy) { Vector = ChatVector.Resolve("mood", _lm) };

    [Test]
    public void Streamed_text_is_the_answer_and_the_second_turn_sees_the_first()
    {
        ChatSession chat = Session();
        var streamed = new System.Text.StringBuilder();
        ChatReply first = chat.Answer("how was your day?", (_, _, text) => streamed.Append(text));
        Assert.That(first.FinishReason, Is.EqualTo("stop"));
        Assert.That(first.Text, Is.Not.Empty);
        Assert.That(streamed.ToString(), Is.EqualTo(first.Text));

        ChatReply second = chat.Answer("tell me about the garden.");
        // The same request by hand: both turns and the first answer through the template, same seed rule.
        string prompt = _lm.Template.Render([new("user", "how was your day?"), new("assistant", first.Text), new("user", "tell me about the garden.")],
            true, new Dictionary<string, object?> { ["date_string"] = LanguageModel.DefaultDateString });
        var request = new GenerationRequest(_lm.Tokenizer.Encode(prompt, addBos: false), 64, Greedy.Sampling,
            [new SteeringAdd(chat.Layer, chat.Vector!.ForBlock(chat.Layer), 1f)], SplitMix64.Hash(SplitMix64.Hash(2)), _lm.Tokenizer.EosTokenIds);
        string expected = new Generator(_lm.Model, _lm.Tokenizer).Generate([request])[0].Text!;
        Assert.That(second.Text, Is.EqualTo(expected));
        Assert.That(chat.Turns.Select(t => t.Role), Is.EqualTo(new[] { "user", "assistant", "user", "assistant" }));
    }

    [Test]
    public void Compare_answers_the_last_turn_at_each_multiplier_and_the_happy_share_rises()
    {
        ChatSession chat = Session();
        chat.Multiplier = 2;
        ChatReply answer = chat.Answer("how was your day?");
        var replies = chat.Compare([-4, 0, 2, 4]);
        Assert.That(replies[2].Text, Is.EqualTo(answer.Text), "the column at the current multiplier repeats the answer");
        DemoLanguage language = DemoModel.Language(DemoFiles.ModelDir);
        double[] happy = replies.Select(r => HappyShare(language, r.Text)).ToArray();
        TestContext.Out.WriteLine(string.Join(" | ", replies.Select((r, i) => $"{r.Steering.Multiplier}: {happy[i]:0.00} {r.Text}")));
        for (int i = 1; i < happy.Length; i++) Assert.That(happy[i], Is.GreaterThanOrEqualTo(happy[i - 1]), string.Join(", ", happy));
        Assert.That(happy[^1] - happy[0], Is.GreaterThan(0.5));
        // The alternatives are on record but not in the history the next answer sees.
        Assert.That(chat.Turns.Count(t => t.Alternative), Is.EqualTo(4));
        ChatReply next = chat.Answer("how do you feel?");
        chat.Reset();
        Assert.That(chat.Turns, Is.Empty);
        ChatSession plain = Session();
        plain.Multiplier = 2;
        plain.Answer("how was your day?");
        Assert.That(plain.Answer("how do you feel?").Text, Is.EqualTo(next.Text));
    }

    /// <summary>Happy words among happy and sad words; 0.5 for a text with neither.</summary>
    public static double HappyShare(DemoLanguage language, string text) => language.Measure(text).Rates["mood"] ?? 0.5;

    [Test]
    public void A_cancelled_answer_keeps_what_it_had_and_the_chat_goes_on()
    {
        ChatSession chat = Session();
        using var cancel = new CancellationTokenSource();
        int tokens = 0;
        ChatReply stopped = chat.Answer("how was your day?", (_, _, _) => { if (++tokens == 5) cancel.Cancel(); }, cancel.Token);
        Assert.That(stopped.FinishReason, Is.EqualTo("cancelled"));
        ChatReply full = Session().Answer("how was your day?");
        Assert.That(full.Text, Does.StartWith(stopped.Text));
        Assert.That(stopped.Text.Length, Is.LessThan(full.Text.Length));
        Assert.That(chat.Turns[^1].Content, Is.EqualTo(stopped.Text));
        Assert.That(chat.Answer("how do you feel?").FinishReason, Is.EqualTo("stop"));
    }

    [Test]
    public void The_oldest_turns_are_left_out_when_the_history_outgrows_the_context()
    {
        ChatSession chat = Session();
        int leftOut = 0;
        for (int i = 0; i < 8 && leftOut == 0; i++) leftOut = chat.Answer("tell me about the garden.").TurnsLeftOut;
        Assert.That(leftOut, Is.GreaterThan(0).And.EqualTo(leftOut / 2 * 2), "whole exchanges are left out");
        string tooLong = string.Concat(Enumerable.Repeat("tell me about the garden. ", 60));
        int before = chat.Turns.Count;
        Assert.That(() => chat.Answer(tooLong), Throws.ArgumentException.With.Message.Contains("context is 256"));
        Assert.That(chat.Turns.Count, Is.EqualTo(before), "the turn the model could not take is not kept");
    }

    [Test]
    public void Monitor_gives_one_projection_per_token_and_it_rises_with_the_multiplier()
    {
        ChatSession chat = Session();
        chat.Monitor = ChatVector.Resolve("mood", _lm);
        chat.Answer("how was your day?");
        var replies = chat.Compare([-4, 4]);
        int[] lengths = replies.Select(r => _lm.Tokenizer.Encode(r.Text, addBos: false).Length).ToArray();
        Assert.That(replies.Select(r => r.Projections!.Length), Is.EqualTo(lengths.Select(n => n + 1)), "one per generated token, the end-of-turn token too");
        Assert.That(replies[1].Projections!.Average(), Is.GreaterThan(replies[0].Projections!.Average()));
    }

    [Test]
    public void Save_writes_the_conversation_as_jsonl_with_the_steering_of_each_answer()
    {
        ChatSession chat = Session();
        chat.System = "be brief.";
        chat.Multiplier = 3;
        chat.Answer("how was your day?");
        chat.Compare([-1, 1]);
        string path = Path.Combine(TestModels.TempDir("chat"), "talk.jsonl");
        Assert.That(ChatTranscript.Save(path, chat), Is.EqualTo(5));
        var lines = File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(lines.Select(l => l.GetProperty("role").GetString()), Is.EqualTo(new[] { "system", "user", "assistant", "assistant", "assistant" }));
        Assert.That(lines[2].GetProperty("multiplier").GetSingle(), Is.EqualTo(3f));
        Assert.That(lines[2].GetProperty("vector").GetString(), Is.EqualTo("mood"));
        Assert.That(lines[2].GetProperty("content").GetString(), Is.EqualTo(chat.Turns[1].Content));
        Assert.That(lines[2].TryGetProperty("alternative", out _), Is.False);
        Assert.That(lines[3].GetProperty("alternative").GetBoolean(), Is.True);
        Assert.That(lines[4].GetProperty("multiplier").GetSingle(), Is.EqualTo(1f));
    }

    [Test]
    public void The_terminal_runs_commands_and_reports_bad_ones_in_one_line_without_leaving()
    {
        var output = new StringWriter();
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 160;
        ChatSession chat = new(_lm, Greedy);
        string input = "/m 4\n/layer 9\n/vector nosuchtrait\n/vector mood\n/bogus\nhow was your day?\n/compare\n/monitor mood\ntell me about [the] garden.\n/compare -1,1\n/reset\n/compare\n/quit\nnever read\n";
        int code = new ChatTerminal(chat, console, new StringReader(input)).Run();
        string text = output.ToString();
        TestContext.Out.WriteLine(text);
        Assert.That(code, Is.EqualTo(0));
        Assert.That(text, Does.Contain("error: layer 9 is out of range: the model has blocks 0..3"));
        Assert.That(text, Does.Contain("error: vector 'nosuchtrait': no such file"));
        Assert.That(text, Does.Contain("error: unknown command /bogus"));
        Assert.That(text, Does.Contain("steering: mood · block 1 · ×4 · positions all"));
        Assert.That(text, Does.Contain("×-4").And.Contain("×0").And.Contain("×4"), "/compare alone is -m, 0, m");
        Assert.That(Regex.Matches(text, @"projection on mood@1: -?\d+\.\d\d █+ -?\d+\.\d\d").Count, Is.EqualTo(2), "a legend under the answer and under the table");
        Assert.That(text, Does.Contain("error: nothing to compare yet"), "/reset forgot the turn");
        Assert.That(chat.Turns, Is.Empty);
    }

    [Test]
    public void The_colour_scale_runs_from_blue_through_grey_to_red()
    {
        Assert.That(ProjectionColours.Hex(-3, -3, 5), Is.EqualTo("#3c78ff"));
        Assert.That(ProjectionColours.Hex(1, -3, 5), Is.EqualTo("#bebebe"));
        Assert.That(ProjectionColours.Hex(5, -3, 5), Is.EqualTo("#ff4632"));
        Assert.That(ProjectionColours.Hex(9, -3, 5), Is.EqualTo("#ff4632"), "clamped");
        Assert.That(ProjectionColours.Hex(2, 2, 2), Is.EqualTo("#bebebe"), "a flat answer is grey");
        Assert.That(ProjectionColours.Markup(["a[b]", "", "c"], [0f, 1f, 2f], 0, 2), Is.EqualTo("[#3c78ff]a[[b]][/][#ff4632]c[/]"));
    }
}
