using SteerEngine.Steering;

namespace SteerEngine.Generation;

/// <summary>
/// What a prompt's shareable prefix depends on: its tokens except the last, and the steering terms
/// that reach any of those positions (all / prompt / tokens terms, in the row's order, with their
/// operation and position mask; response-side terms start at the last prompt token, which every row
/// computes itself). Two rows with equal keys have the same keys
/// and values at those positions bit for bit, so one computes them and the others copy them.
/// </summary>
public sealed class PrefixKey : IEquatable<PrefixKey>
{
    readonly int[] _tokens;
    readonly SteeringAdd[] _adds;
    readonly int _hash;

    PrefixKey(int[] tokens, int length, SteeringAdd[] adds)
    {
        _tokens = tokens;
        Length = length;
        _adds = adds;
        var hash = new HashCode();
        hash.Add(length);
        for (int i = 0; i < length; i++) hash.Add(tokens[i]);
        foreach (SteeringAdd a in adds) { hash.Add(a.Layer); hash.Add(BitConverter.SingleToInt32Bits(a.Multiplier)); }
        _hash = hash.ToHashCode();
    }

    /// <summary>Prompt positions the key covers: all but the last.</summary>
    public int Length { get; }

    /// <summary>The request's key, or null when it has nothing to share (a one-token prompt) or scores its prompt (it needs every prompt row's logits).</summary>
    /// <param name="terms">the row's steering as it runs (conditional terms resolved); the request's own when null</param>
    public static PrefixKey? For(GenerationRequest r, IReadOnlyList<SteeringAdd>? terms = null)
    {
        int length = r.PromptTokens.Length - 1;
        if (length < 1 || r.PromptLogprobs) return null;
        var adds = (terms ?? r.Steering ?? []).Where(a => Enumerable.Range(0, length).Any(p => a.AppliesAt(p, r.PromptTokens.Length))).ToArray();
        return new PrefixKey(r.PromptTokens, length, adds);
    }

    public bool Equals(PrefixKey? other)
    {
        if (other is null || other._hash != _hash || other.Length != Length || other._adds.Length != _adds.Length) return false;
        if (!_tokens.AsSpan(0, Length).SequenceEqual(other._tokens.AsSpan(0, Length))) return false;
        for (int i = 0; i < _adds.Length; i++)
        {
            SteeringAdd a = _adds[i], b = other._adds[i];
            if (a.Layer != b.Layer || BitConverter.SingleToInt32Bits(a.Multiplier) != BitConverter.SingleToInt32Bits(b.Multiplier)) return false;
            if (!SameShape(a, b)) return false;
            if (!ReferenceEquals(a.Vector, b.Vector) && !BitwiseEqual(a.Vector, b.Vector)) return false;
        }
        return true;
    }

    /// <summary>Same operation with the same parameters, and the same positions mask.</summary>
    static bool SameShape(SteeringAdd a, SteeringAdd b) =>
        a.Op == b.Op && a.Lo.Equals(b.Lo) && a.Hi.Equals(b.Hi) && a.Value.Equals(b.Value) && a.Positions == b.Positions
        && a.FirstK == b.FirstK && (a.TokenPositions ?? []).AsSpan().SequenceEqual(b.TokenPositions ?? []);

    static bool BitwiseEqual(float[] a, float[] b) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));

    public override bool Equals(object? obj) => Equals(obj as PrefixKey);
    public override int GetHashCode() => _hash;
}
