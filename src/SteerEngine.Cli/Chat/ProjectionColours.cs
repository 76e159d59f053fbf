using System.Globalization;
using System.Text;
using Spectre.Console;

namespace SteerEngine.Cli.Chat;

/// <summary>
/// /monitor's colour scale: each token's text coloured by its projection, from blue (the lowest shown)
/// through grey to red (the highest). Answers shown together share one scale so they can be compared.
/// </summary>
public static class ProjectionColours
{
    /// <summary>Spectre markup of the pieces (one per generated token) coloured by projections[i]; pieces past the projections stay plain.</summary>
    public static string Markup(IReadOnlyList<string> pieces, float[] projections, float low, float high)
    {
        var markup = new StringBuilder();
        for (int i = 0; i < pieces.Count; i++)
        {
            string text = Spectre.Console.Markup.Escape(pieces[i]);
            if (text.Length == 0) continue;
            markup.Append(i < projections.Length ? $"[{Hex(projections[i], low, high)}]{text}[/]" : text);
        }
        return markup.ToString();
    }

    /// <summary>"#rrggbb" for value on the low..high scale: blue, grey at the middle, red.</summary>
    public static string Hex(float value, float low, float high)
    {
        double t = high > low ? Math.Clamp((value - low) / (high - low), 0, 1) : 0.5;
        (int r, int g, int b) = t < 0.5
            ? Mix((60, 120, 255), (190, 190, 190), t * 2)
            : Mix((190, 190, 190), (255, 70, 50), t * 2 - 1);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    static (int, int, int) Mix((int R, int G, int B) a, (int R, int G, int B) b, double t) =>
        ((int)Math.Round(a.R + (b.R - a.R) * t), (int)Math.Round(a.G + (b.G - a.G) * t), (int)Math.Round(a.B + (b.B - a.B) * t));

    /// <summary>The legend line: what is projected and the scale's ends.</summary>
    public static string Legend(string monitor, float low, float high)
    {
        var bar = new StringBuilder();
        for (int i = 0; i <= 8; i++) bar.Append($"[{Hex(low + (high - low) * i / 8f, low, high)}]█[/]");
        return $"[grey]projection on {Spectre.Console.Markup.Escape(monitor)}:[/] {low.ToString("0.00", CultureInfo.InvariantCulture)} {bar} " +
               high.ToString("0.00", CultureInfo.InvariantCulture);
    }
}
