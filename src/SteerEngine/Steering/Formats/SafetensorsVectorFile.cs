using System.Runtime.InteropServices;
using SteerEngine.Model;

namespace SteerEngine.Steering.Formats;

/// <summary>
/// Steering vectors in safetensors: one tensor ([H] or [layers+1, H], f32/bf16/f16), or a per-layer set
/// stored as 1-D tensors named <c>direction.N</c>, N the 0-based block they steer (the GGUF control-vector
/// naming). Written as one f32 tensor named "direction" or "vectors".
/// </summary>
internal static class SafetensorsVectorFile
{
    public static unsafe SteeringVector Read(string path)
    {
        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (ModelFormatException e)
        {
            throw new InvalidDataException(e.Message, e);
        }
        using (file)
        {
            if (file.Tensors.Count > 0 && file.Tensors.Keys.All(n => ControlVectorLayers.TryParseName(n, out _)))
            {
                var directions = new List<(int Block, float[] Values)>();
                foreach (TensorInfo t in file.Tensors.Values)
                {
                    ControlVectorLayers.TryParseName(t.Name, out int block);
                    if (t.Shape.Length != 1)
                        throw new InvalidDataException($"{path}: tensor '{t.Name}' has shape {VectorTensor.Format(t.Shape)}, expected [hidden]");
                    directions.Add((block, Widen(path, file, t).Data));
                }
                return ControlVectorLayers.ToPerLayerSet(path, directions);
            }
            if (file.Tensors.Count != 1)
                throw new InvalidDataException($"{path}: expected one tensor or tensors named direction.N, found {file.Tensors.Count} ({string.Join(", ", file.Tensors.Keys.Take(5))})");
            return Widen(path, file, file.Tensors.Values.Single()).ToSteeringVector(path);
        }
    }

    static VectorTensor Widen(string path, SafetensorsFile file, TensorInfo t)
    {
        if (t.ElementCount > Array.MaxLength)
            throw new InvalidDataException($"{path}: tensor '{t.Name}' has {t.ElementCount} elements, too many for a steering vector");
        return new VectorTensor(t.Shape, ReadF32(file, t, 0, (int)t.ElementCount));
    }

    /// <summary><paramref name="count"/> elements of <paramref name="t"/> from element <paramref name="first"/>, widened to f32.</summary>
    internal static unsafe float[] ReadF32(SafetensorsFile file, TensorInfo t, long first, int count)
    {
        var data = new float[count];
        byte* p = file.DataPointer(t) + first * DTypes.Size(t.DType);
        switch (t.DType)
        {
            case DType.F32: new ReadOnlySpan<float>(p, count).CopyTo(data); break;
            case DType.BF16: BFloat16Convert.ToF32(new ReadOnlySpan<ushort>(p, count), data); break;
            case DType.F16:
                var h = new ReadOnlySpan<Half>(p, count);
                for (int i = 0; i < count; i++) data[i] = (float)h[i];
                break;
        }
        return data;
    }

    public static void Write(string path, VectorTensor tensor)
    {
        var spec = new TensorSpec(tensor.Shape.Length == 1 ? "direction" : "vectors", DType.F32, tensor.Shape);
        SafetensorsWriter.Write(path, [spec], (_, s) => s.Write(MemoryMarshal.AsBytes(tensor.Data.AsSpan())));
    }
}
