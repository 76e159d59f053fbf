using System.CommandLine;
using SteerEngine.Generation.Jobs;

namespace SteerEngine.Cli.Commands;

/// <summary><c>steer merge</c>: join a sharded job's outputs into one file ordered by item, checking for repeats and gaps.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var shards = new Argument<string[]>("shards") { Description = "shard output files", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Required = true, Description = "merged JSONL" };
        var expect = new Option<long?>("--expect") { Description = "number of records the whole job has (checks nothing is missing)" };
        var command = new Command("merge", "join shard outputs of a generate job") { shards, output, expect };
        command.SetAction(p => CliErrors.Run(() =>
        {
            long n = GenerateJob.Merge(p.GetValue(shards)!, p.GetValue(output)!, p.GetValue(expect));
            Console.WriteLine($"merged {n} records into {p.GetValue(output)}");
            return 0;
        }));
        return command;
    }
}
