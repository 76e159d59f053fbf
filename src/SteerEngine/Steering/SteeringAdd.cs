namespace SteerEngine.Steering;

/// <summary>
/// One term of h_L ← h_L + multiplier · vector, added to the output of decoder block
/// <see cref="Layer"/> (0-based) at the positions <see cref="Positions"/> selects.
/// </summary>
public sealed record SteeringAdd(int Layer, float[] Vector, float Multiplier, SteeringPositions Positions = SteeringPositions.All);

/// <summary>The steering of one sequence: any number of adds, possibly at several layers.</summary>
public sealed class SequenceSteering
{
    public SequenceSteering(IEnumerable<SteeringAdd> adds, int promptLength)
    {
        Adds = adds.ToArray();
        PromptLength = promptLength;
    }

    public IReadOnlyList<SteeringAdd> Adds { get; }

    /// <summary>Number of prompt tokens, which the Prompt and Response modes are relative to.</summary>
    public int PromptLength { get; }

    /// <summary>Checks every add against the model: layer in range, vector length = hidden, finite values.</summary>
    public void Validate(int numLayers, int hidden)
    {
        foreach (SteeringAdd a in Adds)
        {
            if (a.Layer < 0 || a.Layer >= numLayers)
                throw new ArgumentException($"steering layer {a.Layer} is out of range: the model has blocks 0..{numLayers - 1}");
            if (a.Vector.Length != hidden)
                throw new ArgumentException($"steering vector has {a.Vector.Length} elements, the model's hidden size is {hidden}");
            if (!float.IsFinite(a.Multiplier))
                throw new ArgumentException($"steering multiplier {a.Multiplier} is not finite");
            for (int i = 0; i < a.Vector.Length; i++)
                if (!float.IsFinite(a.Vector[i]))
                    throw new ArgumentException($"steering vector element {i} is {a.Vector[i]}: vectors must be finite");
        }
    }
}
