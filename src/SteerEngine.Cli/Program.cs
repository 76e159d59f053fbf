using System.CommandLine;
using SteerEngine.Cli.Commands;

namespace SteerEngine.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("steer: activation-steering inference engine (Llama 3.x, Qwen3)");
        root.Subcommands.Add(ModelCommand.Create());
        root.Subcommands.Add(GenerateCommand.Create());
        root.Subcommands.Add(ScoreCommand.Create());
        root.Subcommands.Add(MergeCommand.Create());
        root.Subcommands.Add(ExtractCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(TrainBipoCommand.Create());
        root.Subcommands.Add(ChatCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(RunBatchCommand.Create());
        root.Subcommands.Add(ExperimentCommand.Create());
        root.Subcommands.Add(ReportCommand.Create());
        root.Subcommands.Add(GpuCheckCommand.Create());
        root.Subcommands.Add(JudgeCommand.Create());
        root.Subcommands.Add(PersonaCommand.Create());
        return root.Parse(args).Invoke();
    }
}
