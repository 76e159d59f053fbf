namespace SteerEngine.Training;

/// <summary>
/// AdamW as torch.optim.AdamW computes it (the reference's optim="adamw_torch"): decoupled weight decay
/// p ← p·(1 − lr·wd), then m ← β1·m + (1−β1)·g, s ← β2·s + (1−β2)·g², and
/// p ← p − lr/(1−β1^t) · m / (√s/√(1−β2^t) + eps). Moments are f32 like torch's.
/// </summary>
public sealed class AdamW(int size, double weightDecay = 0, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
{
    /// <summary>(size) first and second moments.</summary>
    public float[] M { get; } = new float[size];
    public float[] S { get; } = new float[size];
    /// <summary>Steps taken so far.</summary>
    public int Step { get; set; }

    public void Update(Span<float> parameter, ReadOnlySpan<float> grad, double lr)
    {
        Step++;
        double correction1 = 1 - Math.Pow(beta1, Step), correction2Sqrt = Math.Sqrt(1 - Math.Pow(beta2, Step));
        double stepSize = lr / correction1;
        for (int i = 0; i < parameter.Length; i++)
        {
            float p = (float)(parameter[i] * (1 - lr * weightDecay));
            M[i] = (float)(beta1 * M[i] + (1 - beta1) * grad[i]);
            S[i] = (float)(beta2 * S[i] + (1 - beta2) * (double)grad[i] * grad[i]);
            double denom = Math.Sqrt(S[i]) / correction2Sqrt + eps;
            parameter[i] = (float)(p - stepSize * M[i] / denom);
        }
    }
}

/// <summary>
/// transformers' get_cosine_schedule_with_warmup (num_cycles 0.5): the learning-rate factor at optimizer
/// step t (0-based; the first step uses t = 0) rises linearly over the warm-up, then follows half a cosine to 0.
/// </summary>
public static class CosineSchedule
{
    public static double Factor(int step, int warmupSteps, int totalSteps)
    {
        if (step < warmupSteps) return (double)step / Math.Max(1, warmupSteps);
        double progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
        return Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * 0.5 * 2 * progress)));
    }
}
