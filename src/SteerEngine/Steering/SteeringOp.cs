namespace SteerEngine.Steering;

/// <summary>
/// What a steering term does to a row h of the residual stream (README "Steering operations").
/// The projection operations act along the unit direction u = vector / |vector|.
/// </summary>
public enum SteeringOp
{
    /// <summary>h ← h + multiplier · vector (the default).</summary>
    Add,
    /// <summary>h ← (h + multiplier · vector) · |h| / |h + multiplier · vector|: the add, with the row's norm kept.</summary>
    AddNormalized,
    /// <summary>h ← h − (h·u) u: the component along u removed.</summary>
    Ablate,
    /// <summary>h ← h + (clamp(h·u, lo, hi) − h·u) u: the projection on u clamped to [lo, hi].</summary>
    Cap,
    /// <summary>h ← h + (value − h·u) u: the projection on u set to a value.</summary>
    Set,
}

public static class SteeringOpNames
{
    /// <summary>The names the API, the CLI and the JSONL records use, in enum order.</summary>
    public static readonly string[] All = ["add", "add_normalized", "ablate", "cap", "set"];

    public static string Name(this SteeringOp op) => All[(int)op];

    public static SteeringOp Parse(string s)
    {
        int i = Array.IndexOf(All, s.ToLowerInvariant());
        if (i < 0) throw new ArgumentException($"steering op '{s}' is not one of {string.Join(", ", All)}");
        return (SteeringOp)i;
    }

    /// <summary>True for the operations that act along the unit direction of the vector (ablate, cap, set).</summary>
    public static bool IsProjection(this SteeringOp op) => op is SteeringOp.Ablate or SteeringOp.Cap or SteeringOp.Set;
}
