using System.CommandLine;
using Spectre.Console;
using SteerEngine.Experiments;
using SteerEngine.Generation.Jobs;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// <c>steer experiment run|status|merge FILE</c>: a whole steering study (train, generate, judge) from one YAML file,
/// resumable, shardable, stages coordinating through the output folder only.
/// </summary>
public static class ExperimentCommand
{
    public static Command Create()
    {
        var command = new Command("experiment", "run a steering study from one YAML file: train, generate, judge");
        command.Subcommands.Add(Run());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Merge());
        return command;
    }

    static Argument<string> FileArgument() => new("file") { Description = "experiment file (YAML)" };

    static Option<string?> OutOption() => new("--out") { Description = "output folder (default: the file's output:)" };

    static Command Run()
    {
        var file = FileArgument();
        var output = OutOption();
        var stage = new Option<string>("--stage") { Description = "train | generate | judge | all", DefaultValueFactory = _ => "all" };
        var shard = new Option<string>("--shard") { Description = "k/n: this process does the stage items i with i mod n = k", DefaultValueFactory = _ => "0/1" };
        var noWait = new Option<bool>("--no-wait") { Description = "do what is ready and stop, instead of waiting for earlier stages and other processes" };
        var command = new Command("run", "do every item of the stage whose inputs are complete and whose output is not") { file, output, stage, shard, noWait };
        command.SetAction(p => CliErrors.Run(() =>
        {
            Experiment experiment = Experiment.Load(p.GetValue(file)!);
            var runner = new ExperimentRunner(experiment, p.GetValue(output), log: m => Console.Error.WriteLine(m));
            RunSummary s = runner.Run(p.GetValue(stage)!, Shard.Parse(p.GetValue(shard)!), wait: !p.GetValue(noWait));
            foreach (string f in s.Failed) Console.Error.WriteLine($"error: {f}");
            foreach (string b in s.Blocked) Console.Error.WriteLine($"error: {b}");
            Console.WriteLine($"{p.GetValue(stage)}: {s.Finished} items done now, {s.AlreadyDone} already done, {s.Failed.Count} failed, {s.Blocked.Count} blocked; outputs in {runner.Layout.Root}");
            return s.Ok ? 0 : 1;
        }));
        return command;
    }

    static Command Status()
    {
        var file = FileArgument();
        var output = OutOption();
        var command = new Command("status", "every item of every stage: done, running, ready, waiting, failed") { file, output };
        command.SetAction(p => CliErrors.Run(() =>
        {
            var rows = ExperimentStatus.Of(Experiment.Load(p.GetValue(file)!), p.GetValue(output));
            var table = new Table().AddColumns("stage", "item", "state", "detail");
            foreach (ItemStatus r in rows) table.AddRow(Markup.Escape(r.Stage), Markup.Escape(r.Item), Markup.Escape(r.State), Markup.Escape(r.Detail));
            AnsiConsole.Write(table);
            foreach (var g in rows.GroupBy(r => r.Stage))
                Console.WriteLine($"{g.Key}: " + string.Join(", ", g.GroupBy(r => r.State).Select(s => $"{s.Count()} {s.Key}")));
            return 0;
        }));
        return command;
    }

    static Command Merge()
    {
        var file = FileArgument();
        var output = OutOption();
        var sources = new Argument<string[]>("shards") { Description = "output folders of shards run without a shared file system", Arity = ArgumentArity.OneOrMore };
        var command = new Command("merge", "copy the finished outputs of shard folders into the experiment's output folder") { file, sources, output };
        command.SetAction(p => CliErrors.Run(() =>
        {
            Experiment experiment = Experiment.Load(p.GetValue(file)!);
            string target = p.GetValue(output) ?? experiment.Output;
            int n = ExperimentMerge.Merge(target, p.GetValue(sources)!);
            Console.WriteLine($"merged {n} files into {target}");
            return 0;
        }));
        return command;
    }
}
