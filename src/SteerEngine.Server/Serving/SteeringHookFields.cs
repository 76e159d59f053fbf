using SteerEngine.Model;
using SteerEngine.Server.Http;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>
/// A steering entry's <c>layer</c>, <c>hook</c> and <c>head</c>: the hook by its short name or its
/// TransformerLens name (whose block may stand in for <c>layer</c>), the head with attn_z only.
/// </summary>
static class SteeringHookFields
{
    public static (SteeringHook Hook, int Layer, int? Head) Parse(RequestFields f, ModelConfig config)
    {
        int? layer = (int?)f.Integer("layer", 0, config.NumLayers - 1);
        string? text = f.String("hook");
        SteeringHook hook = SteeringHook.ResidPost;
        if (text is not null)
        {
            try { (hook, layer) = SteeringHooks.ParseWithLayer(text, layer); }
            catch (ArgumentException e) { throw ApiException.BadRequest($"'{f.Name("hook")}': {e.Message}", f.Name("hook")); }
            if (layer is < 0 || layer >= config.NumLayers)
                throw ApiException.BadRequest($"'{f.Name("hook")}' names block {layer}; the model has blocks 0..{config.NumLayers - 1}", f.Name("hook"));
        }
        if (layer is null) throw ApiException.BadRequest($"'{f.Name("layer")}' is required (or a hook named blocks.L.…)", f.Name("layer"));
        int? head = (int?)f.Integer("head", 0, config.NumHeads - 1);
        if (head is not null && hook != SteeringHook.AttnZ)
            throw ApiException.BadRequest($"'{f.Name("head")}' applies to hook attn_z only, not {hook.Name()}", f.Name("head"));
        return (hook, layer.Value, head);
    }

    /// <summary>The vector's length against the hook's width: hidden, heads × head_dim, or head_dim for one head.</summary>
    public static void CheckWidth(RequestFields f, SteeringAdd term, int length, ModelConfig config)
    {
        int width = term.Width(config.HiddenSize, config.NumHeads, config.HeadDim);
        if (length == width) return;
        string what = term.Hook == SteeringHook.ResidPost ? $"the model's hidden size is {width}"
            : $"hook {term.Hook.Name()}{(term.Head is null ? "" : " with a head")} needs {width}";
        throw ApiException.BadRequest($"'{f.Name("vector")}' has {length} elements; {what}", f.Name("vector"));
    }
}
