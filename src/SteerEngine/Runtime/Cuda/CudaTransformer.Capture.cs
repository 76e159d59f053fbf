using SteerEngine.Capture;

namespace SteerEngine.Runtime.Cuda;

// Hidden-state capture on the device: a sink that needs only projections and masked sums
// (IReducedStateSink) gets them computed where the states are, downloaded once per step; any
// other sink gets the full (T, H) state of every entry.
public sealed partial class CudaTransformer
{
    /// <summary>Whether a reducing sink's projections and sums are taken on the device (else every sink gets full states).</summary>
    public bool DeviceReductions { get; set; } = Environment.GetEnvironmentVariable("STEER_HOST_CAPTURE") != "1";

    /// <summary>Throws unless the sink's reductions fit the batch: one direction list per entry, each (H), mask rows in the batch.</summary>
    void CheckReductions(StateReductions r, int rows)
    {
        int H = Config.HiddenSize, entries = Config.NumLayers + 1;
        if (r.Directions.Length != entries) throw new ArgumentException($"capture reductions: {r.Directions.Length} direction lists for {entries} hidden-state entries");
        foreach (float[] v in r.Directions.SelectMany(d => d))
            if (v.Length != H) throw new ArgumentException($"capture reductions: a direction has {v.Length} elements, hidden size is {H}");
        foreach (int row in r.MaskRows.SelectMany(m => m))
            if ((uint)row >= (uint)rows) throw new ArgumentException($"capture reductions: mask row {row} is outside the batch's {rows} rows");
    }

    /// <summary>The reductions' inputs as the step uploads them: directions (Σ n_e, H), mask starts (M+1), mask rows.</summary>
    static Array[] ReductionArrays(Plan p)
    {
        if (p.Reductions is not { } r) return [new float[1], new int[1], new int[1]];
        float[] directions = r.Directions.SelectMany(d => d).SelectMany(v => v).DefaultIfEmpty(0f).ToArray();
        var maskStart = new int[r.MaskRows.Length + 1];
        for (int m = 0; m < r.MaskRows.Length; m++) maskStart[m + 1] = maskStart[m] + r.MaskRows[m].Length;
        int[] maskRows = r.MaskRows.SelectMany(m => m).DefaultIfEmpty(0).ToArray();
        return [directions, maskStart, maskRows];
    }

    /// <summary>
    /// One rank's capture for one step. Only rank 0 captures (the residual stream is replicated).
    /// Full states are downloaded entry by entry; reductions accumulate in device buffers —
    /// projections (T, n_e) per entry, sums (L+1, M, H) — that come back in one copy at the end.
    /// </summary>
    sealed class RankCapture
    {
        readonly CudaDevice _d;
        readonly Plan _p;
        readonly bool _full, _reduce;
        readonly int _rows, _hidden, _masks;
        readonly int[] _directionStart = [];  // (L+2): entry e's directions are [start[e], start[e+1])
        readonly DevicePtr _directions, _maskStart, _maskRows, _projections, _sums;

        /// <param name="inputs">the uploaded <see cref="ReductionArrays"/></param>
        public RankCapture(CudaDevice d, Workspace ws, Plan p, int rank, int hidden, ReadOnlySpan<DevicePtr> inputs)
        {
            _d = d;
            _p = p;
            _rows = p.Rows;
            _hidden = hidden;
            _full = rank == 0 && p.Captured is not null;
            _reduce = rank == 0 && p.Reductions is not null;
            if (!_reduce) return;
            StateReductions r = p.Reductions!;
            _directionStart = new int[r.Directions.Length + 1];
            for (int e = 0; e < r.Directions.Length; e++) _directionStart[e + 1] = _directionStart[e] + r.Directions[e].Length;
            _masks = r.MaskRows.Length;
            (_directions, _maskStart, _maskRows) = (inputs[0], inputs[1], inputs[2]);
            _projections = ws.Get("capture_projections", (long)_rows * _directionStart[^1] * 4);      // per entry (T, n_e)
            _sums = ws.Get("capture_sums", (long)r.Directions.Length * _masks * hidden * 4);          // (L+1, M, H)
        }

        /// <summary>Whether the states of every entry must be left in x (the final norm writes its output there).</summary>
        public bool Active => _full || _reduce;

        /// <summary>The projection arguments of residual_add_steer for an entry it produces: directions, count, output.</summary>
        public (DevicePtr Directions, int Count, DevicePtr Out) Fused(int entry)
        {
            int n = _reduce ? _directionStart[entry + 1] - _directionStart[entry] : 0;
            return n == 0 ? (DevicePtr.Null, 0, DevicePtr.Null) : (DirectionsOf(entry), n, ProjectionsOf(entry));
        }

        DevicePtr DirectionsOf(int entry) => _directions + (long)_directionStart[entry] * _hidden * 4;
        DevicePtr ProjectionsOf(int entry) => _projections + (long)_rows * _directionStart[entry] * 4;

        /// <summary>Entry <paramref name="entry"/>'s states are in x (T, H): download them, or reduce them (the projections unless <paramref name="projected"/> by the fused kernel).</summary>
        public void Record(int entry, DevicePtr x, bool projected)
        {
            if (_full) _d.Download<float>(x, _p.Captured![entry]);
            if (!_reduce) return;
            int n = _directionStart[entry + 1] - _directionStart[entry];
            if (n > 0 && !projected)
                _d.Launch("project_rows", new Dim3((uint)_rows), Threads(_hidden), x, _hidden, DirectionsOf(entry), n, ProjectionsOf(entry));
            if (_masks > 0)
                _d.Launch("sum_rows_by_mask", new Dim3((uint)((_hidden + 255) / 256), (uint)_masks), new Dim3(256),
                    x, _hidden, _maskStart, _maskRows, _sums + (long)entry * _masks * _hidden * 4);
        }

        /// <summary>After the last entry: the reductions, the only capture bytes that leave the device.</summary>
        public void Finish()
        {
            if (!_reduce) return;
            int entries = _directionStart.Length - 1;
            var projections = new float[(long)_rows * _directionStart[^1]];
            var sums = new float[(long)entries * _masks * _hidden];
            if (projections.Length > 0) _d.Download<float>(_projections, projections);
            if (sums.Length > 0) _d.Download<float>(_sums, sums);
            _p.Reduced = new ReducedStates[entries];
            for (int e = 0; e < entries; e++)
            {
                int first = _rows * _directionStart[e], count = _rows * (_directionStart[e + 1] - _directionStart[e]);
                _p.Reduced[e] = new ReducedStates(projections[first..(first + count)],
                    sums[(e * _masks * _hidden)..((e + 1) * _masks * _hidden)]);
            }
        }
    }
}
