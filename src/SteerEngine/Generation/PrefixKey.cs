using SteerEngine.Steering;

namespace SteerEngine.Generation;

/// <summary>
/// What a prompt's shareable prefix depends on: its tokens except the last, and the steering terms
/// that reach those positions (all / prompt terms and tokens terms listing one of them, in the row's
/// order, compared in full: op, hook, head, parameters, condition, vector bits; response, last_prompt and
/// first_k terms start at the last prompt token, which every row computes itself). Two rows with equal keys have the same keys
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
        foreach (SteeringAdd a in adds) { hash.Add(a.Layer); hash.Add(a.Hook); hash.Add(a.Op); hash.Add(BitConverter.SingleToInt32Bits(a.Multiplier)); }
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
        var adds = (terms ?? r.Steering ?? []).Where(a => a.Positions == SteeringPositions.Tokens
            ? a.TokenPositions?.Any(p => p < length) == true
            : a.AppliesAt(length - 1, r.PromptTokens.Length)).ToArray();
        return new PrefixKey(r.PromptTokens, length, adds);
    }

    public bool Equals(PrefixKey? other)
    {
        if (other is null || other._hash != _hash || other.Length != Length || other._adds.Length != _adds.Length) return false;
        if (!_tokens.AsSpan(0, Length).SequenceEqual(other._tokens.AsSpan(0, Length))) return false;
        for (int i = 0; i < _adds.Length; i++)
        {
            SteeringAdd a = _adds[i], b = other._adds[i];
            // Everything but the arrays by value (a record's arrays compare by reference), then the arrays by content.
            if (a with { Vector = b.Vector, TokenPositions = b.TokenPositions } != b) return false;
            if (!ReferenceEquals(a.Vector, b.Vector) && !BitwiseEqual(a.Vector, b.Vector)) return false;
            if (!(a.TokenPositions ?? []).AsSpan().SequenceEqual(b.TokenPositions ?? [])) return false;
        }
        return true;
    }

    static bool BitwiseEqual(float[] a, float[] b) =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()));

    public override bool Equals(object? obj) => Equals(obj as PrefixKey);
    public override int GetHashCode() => _hash;
}
