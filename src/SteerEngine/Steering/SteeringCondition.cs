namespace SteerEngine.Steering;

/// <summary>Which side of the threshold a condition's score must fall on for the condition to hold.</summary>
public enum ConditionComparator
{
    /// <summary>score &gt; threshold.</summary>
    Greater,
    /// <summary>score &lt; threshold.</summary>
    Less,
}

/// <summary>
/// Conditional activation steering (CAST): whether a sequence's conditional terms apply, decided once per
/// sequence from its prompt. The score is the cosine similarity between <see cref="Vector"/> and the mean,
/// over every prompt position (BOS and chat-template tokens included), of the hidden state at the output
/// of block <see cref="Layer"/> (hidden-states entry Layer + 1, so the last block's is after the final norm),
/// with the sequence's unconditional terms applied. The condition holds when score &gt; threshold
/// (<see cref="ConditionComparator.Greater"/>) or score &lt; threshold (<see cref="ConditionComparator.Less"/>).
/// IBM's activation-steering scores sim(h, tanh(proj_c h)), which is close to |cos(h, c)| and so loses the
/// sign; the plain cosine keeps it, so "about topic A" and "about topic B" fall on opposite sides.
/// </summary>
public sealed record SteeringCondition(int Layer, float[] Vector, float Threshold, ConditionComparator Comparator = ConditionComparator.Greater)
{
    /// <summary>The names the API, the CLI and the JSONL records use, in enum order.</summary>
    public static readonly string[] ComparatorNames = ["greater", "less"];

    public string ComparatorName => ComparatorNames[(int)Comparator];

    /// <summary>Where the vector came from (a file or a server vector name), for records and messages.</summary>
    public string Name { get; init; } = "";

    public static ConditionComparator ParseComparator(string s)
    {
        int i = Array.IndexOf(ComparatorNames, s.ToLowerInvariant());
        if (i < 0) throw new ArgumentException($"condition comparator '{s}' is not one of {string.Join(", ", ComparatorNames)}");
        return (ConditionComparator)i;
    }

    public bool Holds(double score) => Comparator == ConditionComparator.Greater ? score > Threshold : score < Threshold;

    /// <summary>cos(mean, vector) in double; 0 when either is zero.</summary>
    public static double Cosine(ReadOnlySpan<double> mean, ReadOnlySpan<float> vector)
    {
        double dot = 0, mm = 0, vv = 0;
        for (int i = 0; i < vector.Length; i++)
        {
            dot += mean[i] * vector[i];
            mm += mean[i] * mean[i];
            vv += (double)vector[i] * vector[i];
        }
        return mm == 0 || vv == 0 ? 0 : dot / Math.Sqrt(mm * vv);
    }

    /// <summary>Checks the condition against the model: layer, vector length, a finite non-zero vector, a finite threshold.</summary>
    public void Validate(int numLayers, int hidden)
    {
        if (Layer < 0 || Layer >= numLayers)
            throw new ArgumentException($"steering condition layer {Layer} is out of range: the model has blocks 0..{numLayers - 1}");
        if (Vector.Length != hidden)
            throw new ArgumentException($"steering condition vector has {Vector.Length} elements, the model's hidden size is {hidden}");
        if (!Vector.All(float.IsFinite) || Vector.All(x => x == 0))
            throw new ArgumentException("steering condition vector must be finite and non-zero");
        if (!float.IsFinite(Threshold))
            throw new ArgumentException($"steering condition threshold {Threshold} is not finite");
    }
}

/// <summary>What a condition decided for one sequence: its score and whether it held.</summary>
public sealed record ConditionOutcome(double Score, bool Met);
