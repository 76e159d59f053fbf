namespace SteerEngine.Capture;

/// <summary>The per-sequence reductions of hidden states that vector extraction uses (persona-vectors semantics).</summary>
public enum Reduction
{
    /// <summary>Mean over prompt positions 0..P-1.</summary>
    PromptAvg,
    /// <summary>Mean over response positions P..T-1.</summary>
    ResponseAvg,
    /// <summary>The state at the last prompt position, P-1.</summary>
    PromptLast,
    /// <summary>Mean over every position.</summary>
    AllAvg,
}

/// <summary>
/// Streams hidden states into per-sequence, per-entry sums (HF hidden-states numbering, entries 0..L),
/// keeping no per-token tensor: memory is sequences × (L+1) × H × 4 reductions, whatever the lengths.
/// Works on mixed-length batches and on prompts prefilled in several chunks. On a device backend the
/// sums per (sequence, reduction) are taken on the device: only (masks, H) per entry comes back.
/// </summary>
public sealed class ActivationReducer : IReducedStateSink
{
    const int Reductions = 4;

    readonly int _entries, _hidden;
    readonly int[] _promptLengths;
    readonly double[][] _sums;   // per sequence: (4 reductions, entries, H), in double so long sums keep their digits
    readonly int[][] _counts;    // per sequence: (4 reductions) positions seen at entry 0

    /// <param name="promptLengths">per sequence of the batch (same order as the forward batch): its prompt length P</param>
    public ActivationReducer(int entries, int hidden, IReadOnlyList<int> promptLengths)
    {
        _entries = entries;
        _hidden = hidden;
        _promptLengths = promptLengths.ToArray();
        _sums = _promptLengths.Select(_ => new double[4 * entries * hidden]).ToArray();
        _counts = _promptLengths.Select(_ => new int[4]).ToArray();
    }

    public void Record(int entry, ReadOnlySpan<float> states, BatchLayout layout)
    {
        for (int r = 0; r < layout.Rows; r++)
        {
            int s = layout.SequenceOfRow[r], pos = layout.PositionOfRow[r], p = _promptLengths[s];
            ReadOnlySpan<float> h = states.Slice(r * _hidden, _hidden);
            Add(s, Reduction.AllAvg, entry, h);
            if (pos < p) Add(s, Reduction.PromptAvg, entry, h);
            else Add(s, Reduction.ResponseAvg, entry, h);
            if (pos == p - 1) Add(s, Reduction.PromptLast, entry, h);
        }
    }

    /// <summary>Mask 4·s + reduction: the rows of sequence s that <see cref="Record"/> adds to that reduction.</summary>
    StateReductions IReducedStateSink.Reductions(BatchLayout layout)
    {
        var rows = Enumerable.Range(0, _promptLengths.Length * Reductions).Select(_ => new List<int>()).ToArray();
        for (int r = 0; r < layout.Rows; r++)
        {
            int s = layout.SequenceOfRow[r], pos = layout.PositionOfRow[r], p = _promptLengths[s];
            rows[s * Reductions + (int)Reduction.AllAvg].Add(r);
            rows[s * Reductions + (int)(pos < p ? Reduction.PromptAvg : Reduction.ResponseAvg)].Add(r);
            if (pos == p - 1) rows[s * Reductions + (int)Reduction.PromptLast].Add(r);
        }
        return new StateReductions(layout, Enumerable.Repeat(Array.Empty<float[]>(), _entries).ToArray(), rows.Select(r => r.ToArray()).ToArray());
    }

    void IReducedStateSink.RecordReduced(int entry, ReducedStates reduced, StateReductions plan)
    {
        for (int m = 0; m < plan.MaskRows.Length; m++)
        {
            int s = m / Reductions, reduction = m % Reductions;
            if (plan.MaskRows[m].Length == 0) continue;
            Span<double> sum = _sums[s].AsSpan((reduction * _entries + entry) * _hidden, _hidden);
            ReadOnlySpan<float> part = reduced.Sums.AsSpan(m * _hidden, _hidden);
            for (int i = 0; i < _hidden; i++) sum[i] += part[i];
            if (entry == 0) _counts[s][reduction] += plan.MaskRows[m].Length;
        }
    }

    void Add(int sequence, Reduction reduction, int entry, ReadOnlySpan<float> h)
    {
        Span<double> sum = _sums[sequence].AsSpan(((int)reduction * _entries + entry) * _hidden, _hidden);
        for (int i = 0; i < h.Length; i++) sum[i] += h[i];
        if (entry == 0) _counts[sequence][(int)reduction]++;
    }

    /// <summary>One sequence's reduction at every entry: (entries, H). NaN-free: an empty set (no response tokens) is an error.</summary>
    public float[][] Get(int sequence, Reduction reduction)
    {
        int n = _counts[sequence][(int)reduction];
        if (n == 0) throw new InvalidOperationException($"sequence {sequence} has no positions for {reduction} (prompt length {_promptLengths[sequence]})");
        var result = new float[_entries][];
        for (int e = 0; e < _entries; e++)
        {
            var v = new float[_hidden];
            ReadOnlySpan<double> sum = _sums[sequence].AsSpan(((int)reduction * _entries + e) * _hidden, _hidden);
            for (int i = 0; i < _hidden; i++) v[i] = (float)(sum[i] / n);
            result[e] = v;
        }
        return result;
    }
}
