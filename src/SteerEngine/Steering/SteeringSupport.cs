namespace SteerEngine.Steering;

/// <summary>
/// A backend's refusal of a steering term it cannot apply: the term's field that asks for it
/// (<c>op</c>, <c>hook</c>) and why. Checked when a request is admitted, so a server answers 400
/// up front instead of failing in the middle of a forward pass.
/// </summary>
public sealed class SteeringNotSupportedException(int term, string field, string message)
    : ArgumentException($"steering[{term}].{field}: {message}")
{
    /// <summary>The request field, e.g. <c>steering[1].op</c>.</summary>
    public string Field { get; } = $"steering[{term}].{field}";
}
