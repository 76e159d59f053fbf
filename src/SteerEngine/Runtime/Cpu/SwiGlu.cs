namespace SteerEngine.Runtime.Cpu;

/// <summary>gate ← silu(gate) · up, the SwiGLU activation of the MLP.</summary>
public static class SwiGlu
{
    /// <param name="gate">(rows, I), overwritten with the result</param><param name="up">(rows, I)</param>
    public static void Forward(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
