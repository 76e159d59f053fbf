namespace SteerEngine.Model;

/// <summary>Element types the engine reads and writes in weight and vector files.</summary>
public enum DType { BF16, F16, F32 }

public static class DTypes
{
    /// <summary>The safetensors names of the types we accept, for error messages.</summary>
    internal const string SupportedNames = "BF16, F16, F32";

    // Other dtype names the safetensors format defines. We recognise them only so that a
    // file holding, say, I64 position ids is reported as "unsupported" rather than "unknown".
    static readonly HashSet<string> OtherSafetensorsNames =
    [
        "BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F64",
        "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
    ];

    public static int Size(DType t) => t switch
    {
        DType.BF16 => 2,
        DType.F16 => 2,
        DType.F32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    public static string Name(DType t) => t switch
    {
        DType.BF16 => "BF16",
        DType.F16 => "F16",
        DType.F32 => "F32",
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>Parses a safetensors dtype name (case-sensitive, as the format spells it).</summary>
    public static bool TryParse(string s, out DType t)
    {
        switch (s)
        {
            case "BF16": t = DType.BF16; return true;
            case "F16": t = DType.F16; return true;
            case "F32": t = DType.F32; return true;
            default: t = default; return false;
        }
    }

    /// <summary>True for a dtype the safetensors format defines but this engine does not load.</summary>
    internal static bool IsUnsupportedSafetensorsName(string s) => OtherSafetensorsNames.Contains(s);
}
