namespace SteerEngine.Steering.Formats;

/// <summary>
/// Control vectors in GGUF, as repeng's <c>export_gguf</c> writes them and llama.cpp's
/// <c>--control-vector</c> loads them: <c>general.architecture</c> = "controlvector",
/// <c>controlvector.model_hint</c> (string), <c>controlvector.layer_count</c> (u32, the number of
/// directions), and one 1-D F32 tensor <c>direction.N</c> per steered block N (0-based; see
/// <see cref="ControlVectorLayers"/> for why N is the block itself).
/// </summary>
internal static class GgufControlVectorFile
{
    const string Architecture = "controlvector";

    // llama.cpp ignores the hint and repeng only requires it to be present; our architectures are
    // Llama-family, which is what repeng records as model.config.model_type for them.
    const string ModelHint = "llama";

    /// <summary>A per-layer set in the HF numbering: row N + 1 = direction.N, other rows zero.</summary>
    public static SteeringVector Read(string path)
    {
        GgufFile file = GgufFile.Read(path);
        if (!file.Metadata.TryGetValue("general.architecture", out object? arch))
            throw new InvalidDataException($"{path}: GGUF file has no general.architecture; a control vector has \"{Architecture}\"");
        if (arch is not Architecture)
            throw new InvalidDataException($"{path}: GGUF general.architecture is '{arch}', not a control vector (\"{Architecture}\")");
        var directions = new List<(int Block, float[] Values)>();
        foreach (GgufTensorInfo t in file.Tensors)
        {
            if (!ControlVectorLayers.TryParseName(t.Name, out int block))
                throw new InvalidDataException($"{path}: tensor '{t.Name}' is not named direction.N (N the layer it steers)");
            if (t.Dims.Length != 1)
                throw new InvalidDataException($"{path}: tensor '{t.Name}' has {t.Dims.Length} dimensions; directions are 1-D");
            directions.Add((block, file.ReadF32(t)));
        }
        return ControlVectorLayers.ToPerLayerSet(path, directions);
    }

    public static void Write(string path, SteeringVector vector, int? layer)
    {
        var directions = ControlVectorLayers.ToDirections(path, vector, layer);
        (string, object)[] metadata =
        [
            ("general.architecture", Architecture),
            ($"{Architecture}.model_hint", ModelHint),
            ($"{Architecture}.layer_count", (uint)directions.Count),
        ];
        VectorFile.WriteAtomically(path, s =>
            GgufFile.Write(s, metadata, directions.Select(d => (ControlVectorLayers.Name(d.Block), d.Values)).ToList()));
    }
}
