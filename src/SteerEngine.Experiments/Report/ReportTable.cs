using System.Globalization;
using System.Net;
using System.Text;

namespace SteerEngine.Experiments.Report;

/// <summary>A table of a report: written as CSV beside the figures and shown on the page.</summary>
public sealed record ReportTable(string File, string Caption, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string>> Rows)
{
    public void WriteCsv(string outDir)
    {
        var sb = new StringBuilder();
        sb.Append(string.Join(",", Columns.Select(Csv))).Append('\n');
        foreach (var row in Rows) sb.Append(string.Join(",", row.Select(Csv))).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(outDir, File), sb.ToString());
    }

    public string ToHtml()
    {
        var sb = new StringBuilder();
        sb.Append("<table><thead><tr>");
        foreach (string c in Columns) sb.Append("<th>").Append(WebUtility.HtmlEncode(c)).Append("</th>");
        sb.Append("</tr></thead><tbody>\n");
        foreach (var row in Rows)
        {
            sb.Append("<tr>");
            foreach (string cell in row) sb.Append("<td>").Append(WebUtility.HtmlEncode(cell)).Append("</td>");
            sb.Append("</tr>\n");
        }
        return sb.Append("</tbody></table>").ToString();
    }

    public static string Number(double v) => double.IsFinite(v) ? v.ToString("0.####", CultureInfo.InvariantCulture) : "";

    static string Csv(string s) => s.IndexOfAny([',', '"', '\n', '\r']) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";
}
