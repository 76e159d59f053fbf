using System.CommandLine;
using System.Globalization;
using SteerEngine.Experiments.Report;

namespace SteerEngine.Cli.Commands;

/// <summary><c>steer report DIR</c>: figures, tables, ranking, summary.json / summary.csv and an offline index.html for a study tree.</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var defaults = new RankingOptions();
        var dir = new Argument<string>("dir") { Description = "study folder (a BiPO study tree or an emergent-misalignment tree)" };
        var output = new Option<string?>("--out") { Description = "report folder (default: DIR/report)" };
        var trait = new Option<string?>("--trait") { Description = "the trait task (default: the first task that is not the coherence task)" };
        var coherence = new Option<string>("--coherence") { Description = "the coherence task", DefaultValueFactory = _ => defaults.Coherence };
        var floor = new Option<double>("--floor") { Description = "coherence floor of the ranking, in the coherence task's units", DefaultValueFactory = _ => defaults.Floor };
        var traitWeight = new Option<double>("--trait-weight") { DefaultValueFactory = _ => defaults.TraitWeight };
        var coherenceWeight = new Option<double>("--coherence-weight") { DefaultValueFactory = _ => defaults.CoherenceWeight };
        var floors = new Option<string>("--sensitivity-floors") { Description = "floors of the sensitivity table", DefaultValueFactory = _ => string.Join(",", defaults.SensitivityFloors) };
        var command = new Command("report", "plots, tables, ranking and an offline index.html for a steering study")
        {
            dir, output, trait, coherence, floor, traitWeight, coherenceWeight, floors,
        };
        command.SetAction(p => CliErrors.Run(() =>
        {
            string root = p.GetValue(dir)!;
            var options = new RankingOptions
            {
                Trait = p.GetValue(trait), Coherence = p.GetValue(coherence)!, Floor = p.GetValue(floor),
                TraitWeight = p.GetValue(traitWeight), CoherenceWeight = p.GetValue(coherenceWeight),
                SensitivityFloors = p.GetValue(floors)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(f => double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                        : throw new ArgumentException($"--sensitivity-floors: '{f}' is not a number")).ToList(),
            };
            ReportResult r = StudyReport.Write(root, p.GetValue(output) ?? Path.Combine(root, "report"), options);
            foreach (string note in r.Notes) Console.Error.WriteLine($"note: {note}");
            Console.WriteLine($"{r.Layout} study: {r.Figures.Count} figures, {r.Tables.Count} tables; open {r.IndexPath}");
            return 0;
        }));
        return command;
    }
}
