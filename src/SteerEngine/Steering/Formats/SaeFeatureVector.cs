using System.Globalization;
using System.Text.RegularExpressions;
using SteerEngine.Model;

namespace SteerEngine.Steering.Formats;

/// <summary>
/// A steering direction read from one row of a sparse autoencoder's decoder in a safetensors file, the
/// SAELens layout (<c>W_dec</c>: (features, hidden)). The spec is <c>FILE.safetensors#TENSOR[ROW]</c>,
/// optionally followed by <c>*SCALE</c>: a number, or the name of a 1-D tensor of length features in the
/// same file whose element ROW scales the row (a per-feature typical activation stored beside the SAE,
/// or JumpReLU's <c>threshold</c>, the smallest activation the feature fires with). Without a scale the
/// row is taken as stored (SAELens decoders usually have unit-norm rows, so the multiplier is then the
/// feature's activation).
/// </summary>
public static partial class SaeFeatureVector
{
    [GeneratedRegex(@"^(?<file>.+\.safetensors)#(?<tensor>[^\[\]*]+)\[(?<row>[^\]]*)\](\*(?<scale>.+))?$", RegexOptions.IgnoreCase)]
    private static partial Regex SpecPattern();

    /// <summary>True when <paramref name="spec"/> names a decoder row rather than a whole vector file.</summary>
    public static bool IsSpec(string spec) => spec.Contains('#') && SpecPattern().IsMatch(spec) && !File.Exists(spec);

    /// <summary>
    /// Reads the row <paramref name="spec"/> names, scaled when it says so. Errors name the spec and say what is
    /// wrong: a missing file (<see cref="FileNotFoundException"/>), a missing tensor, a tensor that is not
    /// 2-D, a row out of range, a bad scale (<see cref="InvalidDataException"/>, <see cref="ArgumentException"/>).
    /// </summary>
    public static SteeringVector Read(string spec)
    {
        Match m = SpecPattern().Match(spec);
        if (!m.Success) throw new ArgumentException($"{spec}: expected FILE.safetensors#TENSOR[ROW] or FILE.safetensors#TENSOR[ROW]*SCALE");
        string path = m.Groups["file"].Value, name = m.Groups["tensor"].Value;
        if (!int.TryParse(m.Groups["row"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int row))
            throw new ArgumentException($"{spec}: row '{m.Groups["row"].Value}' is not a feature index ≥ 0");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: SAE file not found (from '{spec}')", path);

        SafetensorsFile file;
        try { file = SafetensorsFile.Open(path); }
        catch (ModelFormatException e) { throw new InvalidDataException(e.Message, e); }
        using (file)
        {
            TensorInfo decoder = Find(file, path, name);
            if (decoder.Shape.Length != 2)
                throw new InvalidDataException($"{path}: tensor '{name}' has shape {VectorTensor.Format(decoder.Shape)}; an SAE decoder is [features, hidden]");
            long features = decoder.Shape[0], hidden = decoder.Shape[1];
            if (row >= features)
                throw new ArgumentException($"{spec}: feature {row} is out of range; '{name}' has {features} features (0..{features - 1})");
            float[] values = SafetensorsVectorFile.ReadF32(file, decoder, row * hidden, (int)hidden);
            if (m.Groups["scale"].Success)
            {
                float scale = Scale(file, path, spec, m.Groups["scale"].Value, row, features);
                for (int i = 0; i < values.Length; i++) values[i] *= scale;
            }
            return SteeringVector.Direction(values, spec);
        }
    }

    static float Scale(SafetensorsFile file, string path, string spec, string text, int row, long features)
    {
        if (float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float number))
        {
            if (!float.IsFinite(number)) throw new ArgumentException($"{spec}: scale {text} is not finite");
            return number;
        }
        TensorInfo t = Find(file, path, text);
        if (t.Shape.Length != 1 || t.Shape[0] != features)
            throw new InvalidDataException($"{path}: scale tensor '{text}' has shape {VectorTensor.Format(t.Shape)}; a per-feature scale is [{features}]");
        float scale = SafetensorsVectorFile.ReadF32(file, t, row, 1)[0];
        if (!float.IsFinite(scale)) throw new InvalidDataException($"{path}: scale tensor '{text}' element {row} is {scale}");
        return scale;
    }

    static TensorInfo Find(SafetensorsFile file, string path, string name) =>
        file.Tensors.GetValueOrDefault(name) ?? throw new InvalidDataException(
            $"{path}: no tensor '{name}' (it has {string.Join(", ", file.Tensors.Keys.Order(StringComparer.Ordinal).Take(8))})");
}
