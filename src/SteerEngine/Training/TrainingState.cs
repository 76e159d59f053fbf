using System.Globalization;
using System.Runtime.InteropServices;
using SteerEngine.Model;

namespace SteerEngine.Training;

/// <summary>
/// What <c>--resume</c> needs after a completed epoch: the vector, the AdamW moments and step count, and
/// the settings the run must keep. One safetensors file per layer (tensors vector, adam_m, adam_s; the rest
/// in metadata), written beside itself and renamed into place, so a kill leaves the previous epoch's state.
/// </summary>
public sealed record TrainingState(int Layer, int Epoch, int Step, float[] Vector, float[] AdamM, float[] AdamS,
    IReadOnlyDictionary<string, string> Settings)
{
    const string Format = "steerengine-bipo-state/1";

    public static string PathFor(string outDir, int layer) => System.IO.Path.Combine(outDir, $"train_state_layer{layer}.safetensors");

    public void Write(string path)
    {
        int H = Vector.Length;
        var specs = new[] { "vector", "adam_m", "adam_s" }.Select(n => new TensorSpec(n, DType.F32, [H])).ToList();
        var metadata = new Dictionary<string, string>(Settings)
        {
            ["format"] = Format,
            ["layer"] = Layer.ToString(CultureInfo.InvariantCulture),
            ["epoch"] = Epoch.ToString(CultureInfo.InvariantCulture),
            ["step"] = Step.ToString(CultureInfo.InvariantCulture),
        };
        SafetensorsWriter.Write(path, specs, (spec, stream) =>
        {
            float[] data = spec.Name switch { "vector" => Vector, "adam_m" => AdamM, _ => AdamS };
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        }, metadata);
    }

    public static unsafe TrainingState Read(string path)
    {
        using SafetensorsFile file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("format", out string? format) || format != Format)
            throw new InvalidDataException($"{path}: not a BiPO training state (metadata format is not {Format})");
        float[] Tensor(string name)
        {
            if (!file.Tensors.TryGetValue(name, out TensorInfo? t) || t.DType != DType.F32 || t.Shape.Length != 1)
                throw new InvalidDataException($"{path}: tensor {name} is missing or not a 1-D f32 tensor");
            return new ReadOnlySpan<float>(file.DataPointer(t), (int)t.ElementCount).ToArray();
        }
        int Int(string key) => file.Metadata.TryGetValue(key, out string? s) && int.TryParse(s, CultureInfo.InvariantCulture, out int v)
            ? v : throw new InvalidDataException($"{path}: metadata {key} is missing or not an integer");
        var settings = file.Metadata.Where(kv => kv.Key is not ("format" or "layer" or "epoch" or "step"))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        return new TrainingState(Int("layer"), Int("epoch"), Int("step"), Tensor("vector"), Tensor("adam_m"), Tensor("adam_s"), settings);
    }
}
