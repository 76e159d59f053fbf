namespace SteerEngine.Steering;

/// <summary>
/// One steering term at decoder block <see cref="Layer"/> (0-based), at the positions
/// <see cref="Positions"/> selects. By default h_L ← h_L + multiplier · vector at the block's output;
/// <see cref="Op"/> picks another operation (<see cref="SteeringOp"/>) and <see cref="Hook"/> another
/// place in the block (<see cref="SteeringHook"/>). The terms of a row at one hook apply in list
/// order, each on the result of the one before; the hooks apply in the order the forward pass reaches them.
/// </summary>
public sealed record SteeringAdd(int Layer, float[] Vector, float Multiplier, SteeringPositions Positions = SteeringPositions.All)
{
    public SteeringOp Op { get; init; } = SteeringOp.Add;

    /// <summary>Where in the block the term acts; the vector's width is the hook's (<see cref="Width"/>).</summary>
    public SteeringHook Hook { get; init; } = SteeringHook.ResidPost;

    /// <summary>At <see cref="SteeringHook.AttnZ"/>: the one head (0-based) whose head_dim slice the term acts on, or null for every head.</summary>
    public int? Head { get; init; }

    /// <summary>Cap's bounds on the projection h·u (either may be infinite, not both).</summary>
    public float Lo { get; init; } = float.NegativeInfinity;
    public float Hi { get; init; } = float.PositiveInfinity;

    /// <summary>Set's target projection h·u.</summary>
    public float Value { get; init; }

    /// <summary>FirstK's count of positions.</summary>
    public int FirstK { get; init; }

    /// <summary>Tokens' absolute positions, sorted ascending without repeats.</summary>
    public int[]? TokenPositions { get; init; }

    /// <summary>
    /// CAST: when set, the term applies to a sequence only if the condition holds for its prompt
    /// (<see cref="SteeringCondition"/>); decided once per sequence before its prefill. Null: always applies.
    /// </summary>
    public SteeringCondition? Condition { get; init; }

    /// <summary>Whether this term's row mask selects <paramref name="position"/> of a sequence with this prompt length.</summary>
    public bool AppliesAt(int position, int promptLength) => Positions.Selects(position, promptLength, FirstK, TokenPositions);

    /// <summary>
    /// The part of the hook's row the term acts on, as (first element, count): the whole row but for a
    /// head of <see cref="SteeringHook.AttnZ"/>, whose slice is head · head_dim (the vector holds head_dim values).
    /// </summary>
    public (int Offset, int Count) Slice => Head is { } h ? (h * Vector.Length, Vector.Length) : (0, Vector.Length);

    /// <summary>The vector length the term needs on a model: hidden at the residual hooks; heads × head_dim, or head_dim for one head, at attn_z.</summary>
    public int Width(int hidden, int heads, int headDim) => Hook != SteeringHook.AttnZ ? hidden : Head is null ? heads * headDim : headDim;

    /// <summary>The projection clamp [lo, hi] the kernels apply for ablate, cap and set.</summary>
    public (float Lo, float Hi) ProjectionBounds => Op switch
    {
        SteeringOp.Ablate => (0f, 0f),
        SteeringOp.Cap => (Lo, Hi),
        SteeringOp.Set => (Value, Value),
        _ => (0f, 0f),
    };
}

/// <summary>The steering of one sequence: any number of terms, possibly at several layers.</summary>
public sealed class SequenceSteering
{
    public SequenceSteering(IEnumerable<SteeringAdd> adds, int promptLength)
    {
        Adds = adds.ToArray();
        PromptLength = promptLength;
    }

    public IReadOnlyList<SteeringAdd> Adds { get; }

    /// <summary>Number of prompt tokens, which the Prompt, Response, LastPrompt and FirstK modes are relative to.</summary>
    public int PromptLength { get; }

    /// <summary>True when some term still carries a condition: such a set must be resolved per prompt before a forward pass.</summary>
    public bool HasConditions => Adds.Any(a => a.Condition is not null);

    /// <summary>Checks every term against the model and itself: layer, hook and head, vector length, finite values, op parameters, positions.</summary>
    public void Validate(Model.ModelConfig config) => Validate(config.NumLayers, config.HiddenSize, config.NumHeads, config.HeadDim);

    /// <param name="heads">the model's attention heads and <paramref name="headDim"/> their size; 0 refuses attn_z terms</param>
    public void Validate(int numLayers, int hidden, int heads = 0, int headDim = 0)
    {
        foreach (SteeringAdd a in Adds)
        {
            if (a.Layer < 0 || a.Layer >= numLayers)
                throw new ArgumentException($"steering layer {a.Layer} is out of range: the model has blocks 0..{numLayers - 1}");
            ValidateHook(a, heads);
            int width = a.Width(hidden, heads, headDim);
            if (a.Vector.Length != width)
                throw new ArgumentException(a.Hook == SteeringHook.ResidPost
                    ? $"steering vector has {a.Vector.Length} elements, the model's hidden size is {hidden}"
                    : $"steering vector has {a.Vector.Length} elements; hook {a.Hook.LensName(a.Layer)}{(a.Head is { } h ? $" head {h}" : "")} needs {width}");
            if (!float.IsFinite(a.Multiplier))
                throw new ArgumentException($"steering multiplier {a.Multiplier} is not finite");
            double norm = 0;
            for (int i = 0; i < a.Vector.Length; i++)
            {
                if (!float.IsFinite(a.Vector[i]))
                    throw new ArgumentException($"steering vector element {i} is {a.Vector[i]}: vectors must be finite");
                norm += (double)a.Vector[i] * a.Vector[i];
            }
            ValidateOp(a, norm);
            ValidatePositions(a);
            a.Condition?.Validate(numLayers, hidden);
        }
    }

    static void ValidateHook(SteeringAdd a, int heads)
    {
        if (!Enum.IsDefined(a.Hook)) throw new ArgumentException($"steering hook {(int)a.Hook} is not one of {string.Join(", ", SteeringHooks.Names)}");
        if (a.Hook == SteeringHook.AttnZ && heads <= 0) throw new ArgumentException("steering hook attn_z needs the model's head count");
        if (a.Head is null) return;
        if (a.Hook != SteeringHook.AttnZ)
            throw new ArgumentException($"steering head {a.Head} applies to hook attn_z only, not {a.Hook.Name()}");
        if (a.Head < 0 || a.Head >= heads)
            throw new ArgumentException($"steering head {a.Head} is out of range: the model has heads 0..{heads - 1}");
    }

    static void ValidateOp(SteeringAdd a, double squaredNorm)
    {
        string op = a.Op.Name();
        if (a.Op.IsProjection() && squaredNorm == 0)
            throw new ArgumentException($"steering op {op}: the vector is zero, so it has no direction");
        if (a.Op == SteeringOp.Cap)
        {
            if (float.IsNaN(a.Lo) || float.IsNaN(a.Hi) || a.Lo > a.Hi)
                throw new ArgumentException($"steering op cap: lo {a.Lo} and hi {a.Hi} must be numbers with lo ≤ hi");
            if (float.IsInfinity(a.Lo) && float.IsInfinity(a.Hi))
                throw new ArgumentException("steering op cap needs lo, hi or both");
        }
        if (a.Op == SteeringOp.Set && !float.IsFinite(a.Value))
            throw new ArgumentException($"steering op set: value {a.Value} is not finite");
    }

    static void ValidatePositions(SteeringAdd a)
    {
        if (a.Positions == SteeringPositions.FirstK && a.FirstK < 1)
            throw new ArgumentException($"steering positions first_k needs k ≥ 1, got {a.FirstK}");
        if (a.Positions != SteeringPositions.Tokens) return;
        if (a.TokenPositions is not { Length: > 0 } t)
            throw new ArgumentException("steering positions tokens needs a non-empty list of token positions");
        for (int i = 0; i < t.Length; i++)
            if (t[i] < 0 || (i > 0 && t[i] <= t[i - 1]))
                throw new ArgumentException($"steering token positions must be ≥ 0, ascending and without repeats: {t[i]} at index {i}");
    }
}
