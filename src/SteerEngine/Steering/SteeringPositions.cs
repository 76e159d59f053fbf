namespace SteerEngine.Steering;

/// <summary>Which positions of a sequence a steering add applies to (DESIGN.md §3).</summary>
public enum SteeringPositions
{
    /// <summary>Every position, prefill and decode (BiPO's choice).</summary>
    All,
    /// <summary>Prompt positions only (prefill).</summary>
    Prompt,
    /// <summary>The last prompt position, then every generated token (persona-vectors semantics).</summary>
    Response,
}

public static class SteeringPositionsExtensions
{
    public static bool Selects(this SteeringPositions mode, int position, int promptLength) => mode switch
    {
        SteeringPositions.All => true,
        SteeringPositions.Prompt => position < promptLength,
        SteeringPositions.Response => position >= promptLength - 1,
        _ => false,
    };

    public static SteeringPositions Parse(string s) => s.ToLowerInvariant() switch
    {
        "all" => SteeringPositions.All,
        "prompt" => SteeringPositions.Prompt,
        "response" => SteeringPositions.Response,
        _ => throw new ArgumentException($"steering positions '{s}' is not one of all, prompt, response"),
    };
}
