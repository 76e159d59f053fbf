using SteerEngine.Capture;
using SteerEngine.Model;
using SteerEngine.Runtime;
using SteerEngine.Steering;

namespace SteerEngine.Generation;

/// <summary>
/// CAST's decision (<see cref="SteeringCondition"/>): for one prompt, which conditional terms apply. The
/// prompt is run once through the model with the unconditional terms (a forward pass of its own, before the
/// sequence's prefill), each condition is scored on the mean hidden state at its layer, and the terms whose
/// condition holds are kept, without their condition. The decision depends on the prompt alone, never on
/// which sequences share the batch.
/// </summary>
public static class ConditionalSteering
{
    /// <summary>Prompt tokens per forward pass of the condition run (a long prompt goes in chunks, as prefill does).</summary>
    const int ChunkTokens = 512;

    /// <returns>
    /// The terms to steer with (unconditional ones, and conditional ones whose condition held, stripped of it),
    /// and one outcome per distinct condition in order of first appearance (empty when no term is conditional).
    /// </returns>
    public static (IReadOnlyList<SteeringAdd> Terms, IReadOnlyList<ConditionOutcome> Outcomes) Resolve(IForwardModel model, int[] prompt, IReadOnlyList<SteeringAdd> terms)
    {
        var conditions = terms.Select(t => t.Condition).OfType<SteeringCondition>().Distinct().ToList();
        if (conditions.Count == 0) return (terms, []);
        var always = terms.Where(t => t.Condition is null).ToList();
        int[] layers = conditions.Select(c => c.Layer).Distinct().ToArray();
        double[][] means = PromptMeans(model, [prompt], always, layers)[0];
        var outcomes = conditions.Select(c =>
        {
            double score = SteeringCondition.Cosine(means[Array.IndexOf(layers, c.Layer)], c.Vector);
            return new ConditionOutcome(score, c.Holds(score));
        }).ToList();
        var kept = terms.Where(t => t.Condition is null || outcomes[conditions.IndexOf(t.Condition)].Met)
            .Select(t => t.Condition is null ? t : t with { Condition = null }).ToList();
        return (kept, outcomes);
    }

    /// <summary>
    /// For each prompt, for each of <paramref name="layers"/>, the mean over its positions of the output of
    /// that block (hidden-states entry layer + 1), in double: [prompt][layer index][H]. Prompts run
    /// <paramref name="batchSize"/> at a time, each with <paramref name="steering"/>.
    /// </summary>
    public static double[][][] PromptMeans(IForwardModel model, IReadOnlyList<int[]> prompts, IReadOnlyList<SteeringAdd> steering,
        IReadOnlyList<int> layers, int batchSize = 16)
    {
        int H = model.Config.HiddenSize;
        var means = new double[prompts.Count][][];
        for (int first = 0; first < prompts.Count; first += batchSize)
        {
            int n = Math.Min(batchSize, prompts.Count - first);
            var sink = new MeanSink(layers, n, H, model.Config.NumLayers + 1);
            var caches = Enumerable.Range(first, n).Select(i => model.NewCache(prompts[i].Length)).ToArray();
            for (int start = 0; ; start += ChunkTokens)
            {
                var batch = new List<ForwardSequence>();
                var rowsOf = new List<int>();
                for (int b = 0; b < n; b++)
                {
                    int[] p = prompts[first + b];
                    if (p.Length == 0) throw new ArgumentException($"prompt {first + b} is empty");
                    if (start >= p.Length) continue;
                    var s = steering.Count > 0 ? new SequenceSteering(steering, p.Length) : null;
                    batch.Add(new ForwardSequence(caches[b], p[start..Math.Min(p.Length, start + ChunkTokens)], s));
                    rowsOf.Add(b);
                }
                if (batch.Count == 0) break;
                sink.SequenceOfBatch = rowsOf.ToArray();
                model.Forward(batch, sink);
            }
            for (int b = 0; b < n; b++)
            {
                means[first + b] = sink.Sums[b];
                foreach (double[] sum in sink.Sums[b])
                    for (int i = 0; i < H; i++) sum[i] /= prompts[first + b].Length;
            }
        }
        return means;
    }

    /// <summary>
    /// Sums each sequence's rows at the wanted entries. It asks only for sums by mask (one mask per sequence of the
    /// batch), so a device backend sums there and sends (sequences, H) per entry instead of every row's state.
    /// </summary>
    sealed class MeanSink(IReadOnlyList<int> layers, int sequences, int hidden, int entries) : IReducedStateSink
    {
        public readonly double[][][] Sums = Enumerable.Range(0, sequences).Select(_ => layers.Select(_ => new double[hidden]).ToArray()).ToArray();
        public int[] SequenceOfBatch = [];

        public void Record(int entry, ReadOnlySpan<float> states, BatchLayout layout)
        {
            for (int l = 0; l < layers.Count; l++)
            {
                if (layers[l] + 1 != entry) continue;
                for (int r = 0; r < layout.Rows; r++)
                {
                    double[] sum = Sums[SequenceOfBatch[layout.SequenceOfRow[r]]][l];
                    ReadOnlySpan<float> h = states.Slice(r * hidden, hidden);
                    for (int i = 0; i < hidden; i++) sum[i] += h[i];
                }
            }
        }

        /// <summary>No projections; mask m holds the rows of the batch's sequence m.</summary>
        public StateReductions Reductions(BatchLayout layout)
        {
            var masks = Enumerable.Range(0, SequenceOfBatch.Length)
                .Select(m => Enumerable.Range(0, layout.Rows).Where(r => layout.SequenceOfRow[r] == m).ToArray()).ToArray();
            var none = Enumerable.Range(0, entries).Select(_ => Array.Empty<float[]>()).ToArray();
            return new StateReductions(layout, none, masks);
        }

        public void RecordReduced(int entry, ReducedStates reduced, StateReductions plan)
        {
            for (int l = 0; l < layers.Count; l++)
            {
                if (layers[l] + 1 != entry) continue;
                for (int m = 0; m < plan.MaskRows.Length; m++)
                {
                    double[] sum = Sums[SequenceOfBatch[m]][l];
                    for (int i = 0; i < hidden; i++) sum[i] += reduced.Sums[m * hidden + i];
                }
            }
        }
    }
}
