namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// One recorded device operation: what it is (a kernel with its grid, block and argument bits, a
/// GEMM with its shape and pointers, a collective), as values to compare, and how to run it.
/// </summary>
public sealed record RecordedOp(string Name, ulong[] Values, Action Run)
{
    public bool SameAs(RecordedOp other) => Name == other.Name && Values.AsSpan().SequenceEqual(other.Values);
}

/// <summary>
/// A device graph: a recorded sequence of launches replayed as one. Its operations stay known, so
/// the next step's recording can be compared with them: equal operations (same kernels, grids and
/// argument bits, so the same buffers at the same addresses) mean replaying the graph is exactly
/// what launching them would do.
/// </summary>
public abstract class DeviceGraph(IReadOnlyList<RecordedOp> ops) : IDisposable
{
    public IReadOnlyList<RecordedOp> Ops { get; } = ops;

    /// <summary>Whether a new recording is this graph's operations, argument for argument.</summary>
    public bool Matches(IReadOnlyList<RecordedOp> recording)
    {
        if (recording.Count != Ops.Count) return false;
        for (int i = 0; i < Ops.Count; i++)
            if (!Ops[i].SameAs(recording[i])) return false;
        return true;
    }

    /// <summary>Queues the whole graph on the device's stream.</summary>
    public abstract void Launch();
    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>The emulator's graph: the recorded operations, run again in order.</summary>
public sealed class ReplayedGraph(IReadOnlyList<RecordedOp> ops) : DeviceGraph(ops)
{
    public override void Launch()
    {
        foreach (RecordedOp op in Ops) op.Run();
    }
}

/// <summary>
/// Per rank, the last few graphs (one per batch shape), each replayed when a step records exactly
/// its operations and captured anew otherwise; the oldest is dropped past <see cref="Limit"/>.
/// </summary>
public sealed class DeviceGraphCache : IDisposable
{
    public const int Limit = 8;
    readonly List<DeviceGraph> _graphs = []; // most recently used last

    public int Captures { get; private set; }
    public int Replays { get; private set; }
    public int Count => _graphs.Count;

    /// <summary>Runs a step's recording: the cached graph with these operations, else a new one captured from them.</summary>
    public void Launch(CudaDevice device, IReadOnlyList<RecordedOp> recording)
    {
        DeviceGraph? graph = _graphs.FirstOrDefault(g => g.Matches(recording));
        if (graph is null)
        {
            graph = device.Instantiate(recording);
            Captures++;
            if (_graphs.Count == Limit)
            {
                _graphs[0].Dispose();
                _graphs.RemoveAt(0);
            }
        }
        else
        {
            _graphs.Remove(graph);
            Replays++;
        }
        _graphs.Add(graph);
        graph.Launch();
    }

    public void Dispose()
    {
        foreach (DeviceGraph g in _graphs) g.Dispose();
        _graphs.Clear();
    }
}
