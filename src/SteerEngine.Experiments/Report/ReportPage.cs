using System.Net;
using System.Text;
using System.Text.Json;

namespace SteerEngine.Experiments.Report;

/// <summary>index.html: every figure and table of a report and the study's config, in one page with no outside resources.</summary>
public static class ReportPage
{
    public static string Html(string title, string source, string headline, IReadOnlyList<Figure> figures, IReadOnlyList<ReportTable> tables,
        string? configJson, IReadOnlyList<string> notes)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append("</title>\n<style>")
          .Append("body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}h2{border-bottom:1px solid #ccc;margin-top:2em}")
          .Append("figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{color:#555;font-size:.9em}")
          .Append("table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}")
          .Append("th{background:#f2f2f2}pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:.85em}")
          .Append("</style></head><body>\n");
        sb.Append("<h1>").Append(E(title)).Append("</h1>\n<p>").Append(E(source)).Append("</p>\n<p><strong>").Append(E(headline)).Append("</strong></p>\n");
        sb.Append("<h2>Figures</h2>\n");
        foreach (Figure f in figures)
            sb.Append("<figure><img src=\"").Append(E(Uri.EscapeDataString(f.File))).Append("\" alt=\"").Append(E(f.Caption))
              .Append("\"><figcaption>").Append(E(f.Caption)).Append(" (").Append(E(f.File)).Append(")</figcaption></figure>\n");
        sb.Append("<h2>Tables</h2>\n");
        foreach (ReportTable t in tables)
            sb.Append("<h3>").Append(E(t.Caption)).Append("</h3>\n<p><a href=\"").Append(E(t.File)).Append("\">").Append(E(t.File)).Append("</a></p>\n").Append(t.ToHtml()).Append('\n');
        if (notes.Count > 0)
        {
            sb.Append("<h2>Notes</h2>\n<ul>");
            foreach (string n in notes) sb.Append("<li>").Append(E(n)).Append("</li>");
            sb.Append("</ul>\n");
        }
        sb.Append("<h2>Configuration</h2>\n<pre>").Append(E(configJson is null ? "(no config.json in the study folder)" : Pretty(configJson))).Append("</pre>\n");
        return sb.Append("</body></html>\n").ToString();
    }

    static string Pretty(string json)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(doc.RootElement, new JsonSerializerOptions { WriteIndented = true });
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
