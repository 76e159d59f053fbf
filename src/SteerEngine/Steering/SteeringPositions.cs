namespace SteerEngine.Steering;

/// <summary>
/// Which positions of a sequence a steering term applies to (DESIGN.md §3): each mode is a row mask
/// over absolute positions 0.. of the sequence, see <see cref="SteeringPositionsExtensions.Selects"/>.
/// </summary>
public enum SteeringPositions
{
    /// <summary>Every position, prefill and decode (BiPO's choice).</summary>
    All,
    /// <summary>Prompt positions only (prefill).</summary>
    Prompt,
    /// <summary>The last prompt position, then every generated token (persona-vectors semantics).</summary>
    Response,
    /// <summary>The last prompt position only (where a vector trained on the last token was read).</summary>
    LastPrompt,
    /// <summary>The first k positions of Response: the last prompt position and the first k − 1 generated tokens.</summary>
    FirstK,
    /// <summary>An explicit list of absolute token positions.</summary>
    Tokens,
}

public static class SteeringPositionsExtensions
{
    /// <summary>The names the API, the CLI and the JSONL records use, in enum order.</summary>
    public static readonly string[] Names = ["all", "prompt", "response", "last_prompt", "first_k", "tokens"];

    /// <summary>
    /// Whether the mask selects <paramref name="position"/>. <paramref name="k"/> is FirstK's count,
    /// <paramref name="tokens"/> Tokens' sorted positions; the other modes ignore them.
    /// </summary>
    public static bool Selects(this SteeringPositions mode, int position, int promptLength, int k = 0, int[]? tokens = null) => mode switch
    {
        SteeringPositions.All => true,
        SteeringPositions.Prompt => position < promptLength,
        SteeringPositions.Response => position >= promptLength - 1,
        SteeringPositions.LastPrompt => position == promptLength - 1,
        SteeringPositions.FirstK => position >= promptLength - 1 && position < promptLength - 1 + k,
        SteeringPositions.Tokens => tokens is not null && Array.BinarySearch(tokens, position) >= 0,
        _ => false,
    };

    public static string Name(this SteeringPositions mode) => Names[(int)mode];

    public static SteeringPositions Parse(string s)
    {
        int i = Array.IndexOf(Names, s.ToLowerInvariant());
        if (i < 0) throw new ArgumentException($"steering positions '{s}' is not one of {string.Join(", ", Names)}");
        return (SteeringPositions)i;
    }
}
