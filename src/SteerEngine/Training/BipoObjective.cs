namespace SteerEngine.Training;

/// <summary>The BiPO loss of one batch (mean over its pairs) and each pair's log-probs.</summary>
public sealed record BipoBatchResult(double Loss, PairLogProbs[] Pairs);

/// <summary>The BiPO loss of a batch of pairs through the steered model, and its gradient with respect to v.</summary>
public static class BipoObjective
{
    /// <param name="batch">2P sequences: pair i is (chosen 2i, rejected 2i+1)</param>
    /// <param name="prefix">(T, H) from <see cref="SteeredLogProb.Prefix"/></param>
    /// <param name="refLogProbs">(2P) the unsteered model's summed response log-probs, same order</param>
    /// <param name="grad">(H) gradScale · ∂loss/∂v is added to it; empty for the loss alone</param>
    public static BipoBatchResult Evaluate(SteeredLogProb model, SequenceBatch batch, ReadOnlySpan<float> prefix,
        ReadOnlySpan<float> vector, int direction, double beta, ReadOnlySpan<double> refLogProbs, Span<float> grad, double gradScale = 1)
    {
        CheckPairs(batch);
        return Score(model.Forward(batch, prefix, vector, direction), batch.Count / 2, direction, beta, refLogProbs, grad, gradScale);
    }

    /// <summary>As above, on any backend: <paramref name="batch"/> holds its prefix.</summary>
    public static BipoBatchResult Evaluate(ISteeredBatch batch, ReadOnlySpan<float> vector, int direction, double beta,
        ReadOnlySpan<double> refLogProbs, Span<float> grad, double gradScale = 1)
    {
        CheckPairs(batch.Batch);
        return Score(batch.Forward(vector, direction), batch.Batch.Count / 2, direction, beta, refLogProbs, grad, gradScale);
    }

    static void CheckPairs(SequenceBatch batch)
    {
        if (batch.Count % 2 != 0) throw new ArgumentException("a BiPO batch holds (chosen, rejected) pairs");
    }

    static BipoBatchResult Score(ISteeredPass pass, int pairs, int direction, double beta, ReadOnlySpan<double> refLogProbs,
        Span<float> grad, double gradScale)
    {
        var result = new PairLogProbs[pairs];
        var dLogProb = new double[2 * pairs];
        double loss = 0;
        for (int i = 0; i < pairs; i++)
        {
            result[i] = new PairLogProbs(pass.LogProbs[2 * i], pass.LogProbs[2 * i + 1], refLogProbs[2 * i], refLogProbs[2 * i + 1]);
            var (l, dc, dr) = BipoLoss.Pair(result[i], beta, direction);
            loss += l / pairs;
            dLogProb[2 * i] = dc / pairs * gradScale;
            dLogProb[2 * i + 1] = dr / pairs * gradScale;
        }
        if (!grad.IsEmpty) pass.Backward(dLogProb, grad);
        return new BipoBatchResult(loss, result);
    }

    /// <summary>(n) each sequence's summed response log-prob under the unsteered model.</summary>
    public static double[] ReferenceLogProbs(SteeredLogProb model, SequenceBatch batch, ReadOnlySpan<float> prefix) =>
        model.Forward(batch, prefix, new float[model.Config.HiddenSize], 0).LogProbs;

    /// <summary>As above, on any backend.</summary>
    public static double[] ReferenceLogProbs(ISteeredBatch batch, int hiddenSize) => batch.Forward(new float[hiddenSize], 0).LogProbs;
}
