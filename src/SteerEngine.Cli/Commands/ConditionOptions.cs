using System.CommandLine;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// The CAST flags shared by the commands that steer: --condition FILE --condition-layer L
/// --condition-threshold T --condition-comparator greater|less (README "Conditional steering").
/// </summary>
public sealed class ConditionOptions
{
    public Option<string?> Vector { get; } = new("--condition") { Description = "condition vector file ([hidden] or [layers+1, hidden], as steer extract --condition writes): steer only the sequences whose prompt meets it" };
    public Option<int?> Layer { get; } = new("--condition-layer") { Description = "block (0-based) whose output the condition reads: the mean over the prompt's positions" };
    public Option<float?> Threshold { get; } = new("--condition-threshold") { Description = "cosine-similarity threshold of the condition" };
    public Option<string> Comparator { get; } = new("--condition-comparator") { Description = "greater (score > threshold meets it) | less", DefaultValueFactory = _ => "greater" };

    public void AddTo(Command command)
    {
        command.Options.Add(Vector);
        command.Options.Add(Layer);
        command.Options.Add(Threshold);
        command.Options.Add(Comparator);
    }

    /// <summary>The condition the flags ask for, checked against the model; null without --condition (the other flags are then refused).</summary>
    public SteeringCondition? Resolve(ParseResult p, ModelConfig config)
    {
        string? path = p.GetValue(Vector);
        if (path is null)
        {
            if (p.GetValue(Layer) is not null || p.GetValue(Threshold) is not null)
                throw new ArgumentException("--condition-layer and --condition-threshold go with --condition FILE");
            return null;
        }
        int layer = p.GetValue(Layer) ?? throw new ArgumentException("--condition needs --condition-layer (the block whose output it reads, 0-based)");
        float threshold = p.GetValue(Threshold) ?? throw new ArgumentException("--condition needs --condition-threshold (steer extract --condition finds one)");
        SteeringVector vector = VectorFile.Read(path);
        vector.CheckHidden(config.HiddenSize);
        var condition = new SteeringCondition(layer, vector.ForBlock(layer), threshold, SteeringCondition.ParseComparator(p.GetValue(Comparator)!))
        {
            Name = VectorFile.NameOf(path),
        };
        condition.Validate(config.NumLayers, config.HiddenSize);
        return condition;
    }
}
