using System.Globalization;

namespace SteerEngine.Steering.Formats;

/// <summary>
/// The <c>direction.N</c> naming of control vectors (repeng, llama.cpp) and how it maps to our layers.
/// </summary>
/// <remarks>
/// direction.N steers the output of decoder block N, 0-based: our "layer N" (DESIGN.md §3), which is
/// row N + 1 of a per-layer set. The evidence:
/// <list type="bullet">
/// <item>llama.cpp <c>common_control_vector_load_one</c> (common/common.cpp) parses N from the tensor name,
/// rejects the whole file if any N is 0 or unparsable, and stores direction.N at
/// <c>data[n_embd * (N - 1)]</c> ("layer 1 at [0]"). <c>llama_adapter_cvec::apply</c> (src/llama-adapter.cpp)
/// copies <c>data[n_embd * (il - 1)]</c> into <c>tensors[il]</c> for il = 1 .. n_layer-1, and every
/// architecture's graph ends block il with <c>cur = build_cvec(cur, il)</c> right after the FFN residual add,
/// adding <c>tensors[il]</c>. The "- 1" is only the packing of llama.cpp's flat buffer, which has no slot for
/// block 0: direction.N lands on the output of block N.</item>
/// <item>repeng <c>read_representations</c> (extract.py) keys directions by the index into
/// <c>model.layers</c> (negative ids normalised to n_layers + i) and reads them from
/// <c>hidden_states[layer + 1]</c>, the output of that block; <c>ControlModule</c> (control.py) adds
/// <c>directions[layer]</c> to the output of <c>model.layers[layer]</c>; <c>export_gguf</c> names it
/// <c>direction.{layer}</c>. Its default layers are <c>range(-1, -num_hidden_layers, -1)</c>: blocks
/// n_layers-1 down to 1, written in that order, never block 0.</item>
/// </list>
/// So a file never carries the embeddings (row 0), and llama.cpp cannot take block 0 (row 1).
/// </remarks>
internal static class ControlVectorLayers
{
    const string Prefix = "direction.";

    public static string Name(int block) => Prefix + block.ToString(CultureInfo.InvariantCulture);

    /// <summary>True for "direction.N" with N a non-negative decimal integer.</summary>
    public static bool TryParseName(string name, out int block)
    {
        block = -1;
        return name.StartsWith(Prefix, StringComparison.Ordinal)
            && name.Length > Prefix.Length
            && name.AsSpan(Prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0
            && int.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out block);
    }

    /// <summary>
    /// A per-layer set in the HF numbering from (block, direction) pairs: row N + 1 holds direction.N,
    /// row 0 (embeddings) and every block without a direction are zeros; the last row is the highest block's.
    /// </summary>
    public static SteeringVector ToPerLayerSet(string path, IReadOnlyList<(int Block, float[] Values)> directions)
    {
        if (directions.Count == 0)
            throw new InvalidDataException($"{path}: holds no direction.N tensors");
        int hidden = directions[0].Values.Length;
        var seen = new HashSet<int>();
        foreach (var (block, values) in directions)
        {
            if (values.Length != hidden)
                throw new InvalidDataException($"{path}: {Name(block)} has {values.Length} elements, {Name(directions[0].Block)} has {hidden}; all directions must have the hidden size");
            if (!seen.Add(block))
                throw new InvalidDataException($"{path}: {Name(block)} appears twice");
        }
        if (hidden == 0)
            throw new InvalidDataException($"{path}: directions are empty");
        var rows = new float[directions.Max(d => d.Block) + 2][];
        for (int r = 0; r < rows.Length; r++) rows[r] = new float[hidden];
        foreach (var (block, values) in directions)
            rows[block + 1] = values;
        return SteeringVector.PerLayerSet(rows, path);
    }

    /// <summary>
    /// The directions to write, as repeng writes them: every block from the last down to 1 for a per-layer
    /// set (row 0 and block 0 have no place in a file llama.cpp loads, so they are left out), or the one
    /// <paramref name="layer"/> for a direction.
    /// </summary>
    public static List<(int Block, float[] Values)> ToDirections(string path, SteeringVector vector, int? layer)
    {
        if (!vector.PerLayer)
        {
            if (layer is null)
                throw new ArgumentException($"{path}: a control vector file needs the layer a direction steers; pass the layer (decoder block, 0-based)");
            if (layer < 1)
                throw new ArgumentException($"{path}: cannot write direction.{layer}: llama.cpp rejects control vectors for block 0 or below (layers start at 1)");
            return [(layer.Value, vector.Row(0))];
        }
        if (vector.Rows < 3)
            throw new ArgumentException($"{path}: a per-layer set of {vector.Rows} rows has no block above 0 to write");
        return Enumerable.Range(1, vector.Rows - 2).Reverse().Select(b => (b, vector.Row(b + 1))).ToList();
    }
}
