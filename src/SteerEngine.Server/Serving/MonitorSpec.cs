using System.Text.Json;
using SteerEngine.Generation;
using SteerEngine.Server.Http;
using SteerEngine.Steering;

namespace SteerEngine.Server.Serving;

/// <summary>
/// The chat request's <c>monitor</c> extension field, <c>{"vector": NAME, "layer": L}</c>: each choice
/// then carries <c>projections</c>, one value per generated token, (h·v)/‖v‖ of the output of block L
/// at the position that predicted the token (the side-by-side page colours tokens by it). Streamed, the
/// list comes with the choice's finishing chunk.
/// </summary>
public static class MonitorSpec
{
    /// <returns>null when the field is absent</returns>
    public static ProjectionMonitor? Parse(JsonElement? monitor, VectorLibrary vectors, Model.ModelConfig config)
    {
        if (monitor is not { } m) return null;
        if (m.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest($"'monitor' must be an object {{\"vector\", \"layer\"}}, not {RequestFields.Kind(m)}", "monitor");
        var f = RequestFields.Of(m, "'monitor'", "monitor.");
        string name = f.RequiredString("vector");
        int layer = (int)(f.Integer("layer", 0, config.NumLayers - 1) ?? throw ApiException.BadRequest("'monitor.layer' is required", "monitor.layer"));
        f.RejectUnread();
        SteeringVector v = vectors.Find(name) ?? throw ApiException.BadRequest($"'monitor.vector': no steering vector named '{name}' (GET /v1/steering/vectors lists them)", "monitor.vector", "vector_not_found");
        if (v.Hidden != config.HiddenSize) throw ApiException.BadRequest($"'monitor.vector' '{name}' has {v.Hidden} elements; the model's hidden size is {config.HiddenSize}", "monitor.vector");
        if (v.PerLayer && layer + 1 >= v.Rows) throw ApiException.BadRequest($"'monitor.vector': per-layer vector '{name}' has {v.Rows} rows; layer {layer} needs row {layer + 1}", "monitor.vector");
        return new ProjectionMonitor($"{name}@{layer}", layer, v.ForBlock(layer));
    }
}
