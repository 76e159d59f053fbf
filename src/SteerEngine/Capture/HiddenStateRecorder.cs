namespace SteerEngine.Capture;

/// <summary>Keeps every captured hidden state: (entry, sequence) → (positions, H). For tests and small captures.</summary>
public sealed class HiddenStateRecorder(int entries, int hidden) : IHiddenStateSink
{
    readonly Dictionary<(int Entry, int Sequence), SortedDictionary<int, float[]>> _states = new();

    public int Entries { get; } = entries;

    public void Record(int entry, ReadOnlySpan<float> states, BatchLayout layout)
    {
        for (int r = 0; r < layout.Rows; r++)
        {
            var key = (entry, layout.SequenceOfRow[r]);
            if (!_states.TryGetValue(key, out var rows)) _states[key] = rows = new SortedDictionary<int, float[]>();
            rows[layout.PositionOfRow[r]] = states.Slice(r * hidden, hidden).ToArray();
        }
    }

    /// <summary>The states of one sequence at one entry, in position order. (T, H)</summary>
    public float[] Get(int entry, int sequence)
    {
        if (!_states.TryGetValue((entry, sequence), out var rows)) return [];
        return rows.Values.SelectMany(v => v).ToArray();
    }
}
