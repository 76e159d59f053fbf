namespace SteerEngine.Steering;

/// <summary>
/// Where in decoder block L a steering term acts, named as TransformerLens names its hooks. In the
/// order the forward pass reaches them: AttnZ, then ResidMid, then ResidPost (README "Hook points").
/// </summary>
public enum SteeringHook
{
    /// <summary><c>blocks.L.hook_resid_post</c>: the block's output, after the MLP residual add (the default).</summary>
    ResidPost,
    /// <summary><c>blocks.L.hook_resid_mid</c>: after the attention residual add, before the MLP's norm.</summary>
    ResidMid,
    /// <summary>
    /// <c>blocks.L.attn.hook_z</c>: the attention output per head before <c>o_proj</c>, a row of heads × head_dim;
    /// a term covers the whole row, or one head's head_dim slice when it names a head.
    /// </summary>
    AttnZ,
}

public static class SteeringHooks
{
    /// <summary>The short names the API, the CLI and the JSONL records use, in enum order.</summary>
    public static readonly string[] Names = ["resid_post", "resid_mid", "attn_z"];

    /// <summary>The TransformerLens names without the block prefix, in enum order.</summary>
    static readonly string[] LensNames = ["hook_resid_post", "hook_resid_mid", "attn.hook_z"];

    public static string Name(this SteeringHook hook) => Names[(int)hook];

    /// <summary>The TransformerLens name of the hook at block <paramref name="layer"/>, e.g. <c>blocks.3.attn.hook_z</c>.</summary>
    public static string LensName(this SteeringHook hook, int layer) => $"blocks.{layer}.{LensNames[(int)hook]}";

    /// <summary>
    /// A short name (<c>resid_mid</c>), a TransformerLens name without the block (<c>hook_resid_mid</c>,
    /// <c>attn.hook_z</c>, <c>hook_z</c>) or with it (<c>blocks.3.hook_resid_mid</c>); the block, when the
    /// name carries one, comes back in <paramref name="layer"/>.
    /// </summary>
    public static SteeringHook Parse(string text, out int? layer)
    {
        layer = null;
        string s = text.Trim().ToLowerInvariant(), rest = s;
        if (s.StartsWith("blocks.", StringComparison.Ordinal))
        {
            int dot = s.IndexOf('.', 7);
            if (dot < 0 || !int.TryParse(s[7..dot], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int l))
                throw new ArgumentException($"steering hook '{text}': expected blocks.L.<hook> with L a block number");
            layer = l;
            rest = s[(dot + 1)..];
        }
        int i = Array.IndexOf(LensNames, rest);
        if (i < 0 && layer is null) i = Array.IndexOf(Names, rest);
        if (i < 0 && rest == "hook_z") i = (int)SteeringHook.AttnZ;
        if (i < 0)
            throw new ArgumentException($"steering hook '{text}' is not one of {string.Join(", ", Names)} " +
                "or a TransformerLens name (blocks.L.hook_resid_post, blocks.L.hook_resid_mid, blocks.L.attn.hook_z)");
        return (SteeringHook)i;
    }

    /// <summary>The parse of <paramref name="text"/> with its block checked against <paramref name="layer"/> (the term's own, if any).</summary>
    public static (SteeringHook Hook, int? Layer) ParseWithLayer(string text, int? layer)
    {
        SteeringHook hook = Parse(text, out int? named);
        if (named is { } n && layer is { } l && n != l)
            throw new ArgumentException($"steering hook '{text}' names block {n} but the term's layer is {l}");
        return (hook, named ?? layer);
    }
}
