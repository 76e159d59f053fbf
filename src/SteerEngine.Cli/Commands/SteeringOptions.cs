using System.CommandLine;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>The steering flags shared by every command that runs the model: --vector --layer --multiplier --positions.</summary>
public sealed class SteeringOptions
{
    public Option<string?> Vector { get; } = new("--vector") { Description = "steering vector file (.pt/.pth, .safetensors, .gguf, .npy): [hidden] or [layers+1, hidden]" };
    public Option<int?> Layer { get; } = new("--layer") { Description = "decoder block (0-based) whose output is steered" };
    public Option<float> Multiplier { get; } = new("--multiplier") { Description = "steering strength", DefaultValueFactory = _ => 1f };
    public Option<string> Positions { get; } = new("--positions") { Description = "all | prompt | response", DefaultValueFactory = _ => "all" };

    public void AddTo(Command command)
    {
        command.Options.Add(Vector);
        command.Options.Add(Layer);
        command.Options.Add(Multiplier);
        command.Options.Add(Positions);
    }

    /// <summary>The steering adds the flags ask for, checked against the model; empty when no --vector.</summary>
    public IReadOnlyList<SteeringAdd> Resolve(ParseResult p, ModelConfig config)
    {
        string? path = p.GetValue(Vector);
        if (path is null) return [];
        int layer = p.GetValue(Layer) ?? throw new ArgumentException("--vector needs --layer (the decoder block to steer, 0-based)");
        SteeringVector vector = VectorFile.Read(path);
        vector.CheckHidden(config.HiddenSize);
        var add = new SteeringAdd(layer, vector.ForBlock(layer), p.GetValue(Multiplier), SteeringPositionsExtensions.Parse(p.GetValue(Positions)!));
        new SequenceSteering([add], 0).Validate(config.NumLayers, config.HiddenSize);
        return [add];
    }
}
