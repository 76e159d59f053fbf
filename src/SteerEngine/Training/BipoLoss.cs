namespace SteerEngine.Training;

/// <summary>The summed response log-probs of one preference pair under the steered policy and the reference.</summary>
public readonly record struct PairLogProbs(double PolicyChosen, double PolicyRejected, double RefChosen, double RefRejected);

/// <summary>
/// The BiPO loss (arXiv 2406.00045; the reference BiPOTrainer's sigmoid DPO loss):
/// logits = (log π_v(c) − log π_v(r)) − (log π_ref(c) − log π_ref(r)), negated when the drawn direction
/// d is negative; loss = −log σ(β·logits), averaged over the pairs of a batch. Rewards as the reference
/// logs them: chosen β(log π_v(c) − log π_ref(c)), rejected likewise, whatever d is.
/// </summary>
public static class BipoLoss
{
    /// <summary>One pair's loss and its gradient with respect to the policy's chosen and rejected log-probs.</summary>
    public static (double Loss, double DChosen, double DRejected) Pair(PairLogProbs p, double beta, int direction)
    {
        double logits = (p.PolicyChosen - p.PolicyRejected) - (p.RefChosen - p.RefRejected);
        double sign = direction < 0 ? -1 : 1;
        double z = beta * sign * logits;
        double loss = Softplus(-z);                 // −log σ(z)
        double dz = -Sigmoid(-z);                   // d loss / d z
        double dLogits = dz * beta * sign;
        return (loss, dLogits, -dLogits);
    }

    public static double ChosenReward(PairLogProbs p, double beta) => beta * (p.PolicyChosen - p.RefChosen);
    public static double RejectedReward(PairLogProbs p, double beta) => beta * (p.PolicyRejected - p.RefRejected);

    static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));
    static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));
}
