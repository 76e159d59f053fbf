namespace SteerEngine.Training.Backward;

/// <summary>
/// Input gradients of a = silu(g) · u (Runtime.Cpu.SwiGlu): du = da · silu(g),
/// dg = da · u · σ(g) · (1 + g · (1 − σ(g))).
/// </summary>
public static class SwiGluBackward
{
    /// <param name="gate">(rows, I) the gate projection before the activation</param><param name="up">(rows, I)</param>
    /// <param name="dActivation">(rows, I) gradient of the activation output</param>
    /// <param name="dGate">(rows, I); may alias gate</param><param name="dUp">(rows, I); may alias up</param>
    public static void Backward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dActivation,
        Span<float> dGate, Span<float> dUp)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            // Read everything first: the outputs may alias the inputs (dGate = gate, dUp = up).
            float g = gate[i], u = up[i], da = dActivation[i], sigmoid = 1f / (1f + MathF.Exp(-g));
            dUp[i] = da * g * sigmoid;
            dGate[i] = da * u * sigmoid * (1f + g * (1f - sigmoid));
        }
    }
}
