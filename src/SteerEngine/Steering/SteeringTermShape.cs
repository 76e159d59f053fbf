using System.Text.Json;

namespace SteerEngine.Steering;

/// <summary>
/// Everything of a steering term except its layer, vector and multiplier: the positions mask and the
/// operation with their parameters. A sweep (<c>steer generate</c>) gives every term it makes one shape.
/// </summary>
public sealed record SteeringTermShape(SteeringAdd Template)
{
    public static readonly SteeringTermShape Default = new(new SteeringAdd(0, [], 0f));

    public SteeringPositions Positions => Template.Positions;

    public SteeringAdd Term(int layer, float[] vector, float multiplier) => Template with { Layer = layer, Vector = vector, Multiplier = multiplier };

    /// <summary>Checks the shape on its own (op parameters, k, token positions, hook and head), as <see cref="SequenceSteering.Validate"/> would; a condition is checked against the model, by <see cref="SequenceSteering.Validate"/>.</summary>
    public void Validate() => new SequenceSteering([Term(0, [1f], 1f) with { Condition = null }], 1).Validate(1, 1, heads: (Template.Head ?? 0) + 1, headDim: 1);

    /// <summary>
    /// Writes the shape into a JSONL record: positions and op always, their parameters when they apply, the hook
    /// when not the block output, and a CAST condition with what it decided for this record (<paramref name="outcome"/>)
    /// when the shape has one.
    /// </summary>
    public void Write(Utf8JsonWriter w, ConditionOutcome? outcome = null)
    {
        SteeringAdd t = Template;
        if (t.Hook != SteeringHook.ResidPost) w.WriteString("hook", t.Hook.Name());
        if (t.Head is { } head) w.WriteNumber("head", head);
        w.WriteString("positions", t.Positions.Name());
        if (t.Positions == SteeringPositions.FirstK) w.WriteNumber("k", t.FirstK);
        if (t.Positions == SteeringPositions.Tokens)
        {
            w.WriteStartArray("tokens");
            foreach (int p in t.TokenPositions ?? []) w.WriteNumberValue(p);
            w.WriteEndArray();
        }
        w.WriteString("op", t.Op.Name());
        if (t.Op == SteeringOp.Cap)
        {
            if (float.IsFinite(t.Lo)) w.WriteNumber("lo", t.Lo); else w.WriteNull("lo");
            if (float.IsFinite(t.Hi)) w.WriteNumber("hi", t.Hi); else w.WriteNull("hi");
        }
        if (t.Op == SteeringOp.Set) w.WriteNumber("value", t.Value);
        if (t.Condition is { } c)
        {
            w.WriteStartObject("condition");
            w.WriteString("vector", c.Name);
            w.WriteNumber("layer", c.Layer);
            w.WriteNumber("threshold", c.Threshold);
            w.WriteString("comparator", c.ComparatorName);
            if (outcome is not null) { w.WriteNumber("score", outcome.Score); w.WriteBoolean("met", outcome.Met); }
            w.WriteEndObject();
        }
    }
}
