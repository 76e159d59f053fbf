using System.CommandLine;
using SteerEngine.Model;
using SteerEngine.Steering;

namespace SteerEngine.Cli.Commands;

/// <summary>
/// The steering flags shared by every command that runs the model: --vector --layer --multiplier, and the
/// term's shape (<see cref="AddShapeTo"/>: --positions --first-k --tokens --op --lo --hi --value and the CAST
/// --condition flags), which <c>steer generate</c> uses with its own sweep flags.
/// </summary>
public sealed class SteeringOptions
{
    public Option<string?> Vector { get; } = new("--vector") { Description = "steering vector file (.pt/.pth, .safetensors, .gguf, .npy): [hidden] or [layers+1, hidden]; or an SAE feature, sae.safetensors#W_dec[ROW][*SCALE]" };
    public Option<int?> Layer { get; } = new("--layer") { Description = "decoder block (0-based) whose output is steered" };
    public Option<float> Multiplier { get; } = new("--multiplier") { Description = "steering strength", DefaultValueFactory = _ => 1f };
    public Option<string> Positions { get; } = new("--positions") { Description = "all | prompt | response | last_prompt | first_k (with --first-k) | tokens (with --tokens)", DefaultValueFactory = _ => "all" };
    public Option<int?> FirstK { get; } = new("--first-k") { Description = "positions first_k: how many positions from the last prompt token on" };
    public Option<string?> Tokens { get; } = new("--tokens") { Description = "positions tokens: absolute token positions, e.g. 0,5,12" };
    public Option<string> Op { get; } = new("--op") { Description = "add | add_normalized | ablate | cap (with --lo/--hi) | set (with --value)", DefaultValueFactory = _ => "add" };
    public Option<float?> Lo { get; } = new("--lo") { Description = "op cap: lower bound of the projection on the vector's direction" };
    public Option<float?> Hi { get; } = new("--hi") { Description = "op cap: upper bound of the projection on the vector's direction" };
    public Option<float?> Value { get; } = new("--value") { Description = "op set: the projection on the vector's direction" };
    public Option<string> Hook { get; } = new("--hook") { Description = "resid_post (the block output) | resid_mid | attn_z, or a TransformerLens name: blocks.L.hook_resid_mid (L may stand for the layer)", DefaultValueFactory = _ => "resid_post" };
    public Option<int?> Head { get; } = new("--head") { Description = "hook attn_z: steer this head's head_dim slice only (the vector holds head_dim values)" };
    public ConditionOptions Condition { get; } = new();

    public void AddTo(Command command)
    {
        command.Options.Add(Vector);
        command.Options.Add(Layer);
        command.Options.Add(Multiplier);
        AddShapeTo(command);
    }

    /// <summary>The flags of the term's shape only: positions, operation, condition.</summary>
    public void AddShapeTo(Command command)
    {
        foreach (Option o in new Option[] { Positions, FirstK, Tokens, Op, Lo, Hi, Value, Hook, Head }) command.Options.Add(o);
        Condition.AddTo(command);
    }

    /// <summary>The steering the flags ask for, checked against the model; empty when no --vector.</summary>
    public IReadOnlyList<SteeringAdd> Resolve(ParseResult p, ModelConfig config)
    {
        SteeringTermShape shape = Shape(p, config);
        string? path = p.GetValue(Vector);
        if (path is null)
        {
            if (shape.Template.Condition is not null) throw new ArgumentException("--condition decides whether the --vector steering applies; give --vector");
            return [];
        }
        int? named = HookLayer(p);
        int layer = p.GetValue(Layer) ?? named ?? throw new ArgumentException("--vector needs --layer (the decoder block to steer, 0-based)");
        if (named is { } n && n != layer) throw new ArgumentException($"--hook {p.GetValue(Hook)} names block {n}; --layer asks for {layer}");
        SteeringVector vector = VectorFile.Read(path);
        if (shape.Template.Hook != SteeringHook.AttnZ) vector.CheckHidden(config.HiddenSize);
        var add = shape.Term(layer, vector.ForBlock(layer), p.GetValue(Multiplier));
        new SequenceSteering([add], 0).Validate(config);
        return [add];
    }

    /// <summary>The block a TransformerLens --hook name carries (blocks.L.hook_…), or null.</summary>
    public int? HookLayer(ParseResult p) => SteeringHooks.ParseWithLayer(p.GetValue(Hook)!, null).Layer;

    /// <summary>
    /// --positions, --first-k, --tokens, --op, --lo, --hi, --value, --hook, --head and --condition* as one
    /// checked term shape; a flag the op, mode or hook does not use is an error.
    /// </summary>
    public SteeringTermShape Shape(ParseResult p, ModelConfig config)
    {
        SteeringHook hook = SteeringHooks.ParseWithLayer(p.GetValue(Hook)!, null).Hook;
        int? head = p.GetValue(Head);
        if (head is not null && hook != SteeringHook.AttnZ) throw new ArgumentException($"--head goes with --hook attn_z, not {hook.Name()}");
        string op = p.GetValue(Op)!;
        float? lo = p.GetValue(Lo), hi = p.GetValue(Hi), value = p.GetValue(Value);
        int? firstK = p.GetValue(FirstK);
        string? tokens = p.GetValue(Tokens);
        var term = new SteeringAdd(0, [], 0f, SteeringPositionsExtensions.Parse(p.GetValue(Positions)!))
        {
            Op = SteeringOpNames.Parse(op),
            Lo = lo ?? float.NegativeInfinity,
            Hi = hi ?? float.PositiveInfinity,
            Value = value ?? 0f,
            FirstK = firstK ?? 0,
            TokenPositions = tokens is null ? null : TokenList(tokens),
            Condition = Condition.Resolve(p, config),
            Hook = hook,
            Head = head,
        };
        if (firstK is not null && term.Positions != SteeringPositions.FirstK) throw new ArgumentException("--first-k goes with --positions first_k");
        if (tokens is not null && term.Positions != SteeringPositions.Tokens) throw new ArgumentException("--tokens goes with --positions tokens");
        if ((lo ?? hi) is not null && term.Op != SteeringOp.Cap) throw new ArgumentException($"--lo and --hi go with --op cap, not {op}");
        if (value is not null && term.Op != SteeringOp.Set) throw new ArgumentException($"--value goes with --op set, not {op}");
        if (value is null && term.Op == SteeringOp.Set) throw new ArgumentException("--op set needs --value");
        var shape = new SteeringTermShape(term);
        shape.Validate();
        return shape;
    }

    static int[] TokenList(string text) => text.Split(',', StringSplitOptions.TrimEntries).Select(t =>
        int.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) ? p
            : throw new ArgumentException($"--tokens '{text}': '{t}' is not a token position (a whole number ≥ 0)")).Distinct().Order().ToArray();
}
