using SteerEngine.Capture;

namespace SteerEngine.Runtime.Cuda;

// Decode steps as device graphs. A decode step is ~450 launches (nine kernels and GEMMs per layer)
// whose host cost at GPU speed is larger than the step; a graph launches them as one. Each step
// still records its launches on the host (cheap: no driver call) and replays the rank's graph when
// the recording equals it argument for argument, else captures a new one. So a graph never runs
// anything a direct launch would not, and a changed shape (batch size, KV capacity, workspace
// grown by a prefill) captures anew by itself. What changes from step to step (token ids,
// positions, KV addresses and lengths, steering rows, sampling draws) is the contents of the one
// pinned upload, whose arrays sit at fixed addresses (Workspace.Upload's fixed slots).
public sealed partial class CudaTransformer
{
    /// <summary>Whether decode steps run as device graphs (default on; STEER_CUDA_GRAPHS=0 launches every kernel directly).</summary>
    public bool DecodeGraphs { get; set; } = Environment.GetEnvironmentVariable("STEER_CUDA_GRAPHS") != "0";

    /// <summary>Graphs captured and graph replays so far, over all ranks.</summary>
    public (int Captures, int Replays) GraphCounts => (_ranks.Sum(r => r.Graphs.Captures), _ranks.Sum(r => r.Graphs.Replays));

    /// <summary>
    /// Fixes the step's launch configuration. A graphed step must launch the same kernels with the
    /// same grids whatever its contents: the decode attention gets splits for the batch's largest
    /// reserved KV capacity (splits past a row's length contribute nothing: the result is bit for bit that
    /// of splits by length), and both residual adds get their entry ranges at every layer (an empty
    /// range adds nothing). The attn_z launches stay at the layers where terms apply, so an
    /// unsteered step records none, and a step whose attn_z terms start or stop applying records
    /// another graph. Graphed: one new token per sequence, no hidden-state sink (it downloads
    /// between layers), one lm_head chunk, and not under STEER_CUDA_SYNC (no sync inside a capture).
    /// </summary>
    void PrepareLaunches(Plan p, IHiddenStateSink? sink)
    {
        int chunkRows = (int)Math.Max(1, LogitChunkBytes / ((long)_ranks.Length * _ranks[0].Shape.VocabSlice * 4));
        p.Graphed = DecodeGraphs && sink is null && p.MaxNew == 1 && p.LogitRows.Length <= chunkRows
            && !_ranks.Any(r => r.Device.SyncAfterEachLaunch);
        int keys = p.Graphed ? p.Kv.Max(k => Math.Max(k.Reserved, k.Capacity)) : p.MaxVisible;
        p.DecodeSplits = (keys + DecodeChunk - 1) / DecodeChunk;
        if (p.Graphed) Array.Fill(p.LayerSteered, true, 0, 2 * Config.NumLayers);
    }

    /// <summary>
    /// The group's collectives, recorded into a rank's graph while its device records (NCCL
    /// collectives are captured into CUDA graphs like kernels), else run at once.
    /// </summary>
    sealed class RecordedCollectives(CudaCollectives inner, Rank[] ranks) : CudaCollectives
    {
        public static CudaCollectives? Over(CudaCollectives? inner, Rank[] ranks) => inner is null ? null : new RecordedCollectives(inner, ranks);

        public override int Ranks => inner.Ranks;

        public override void AllReduceSum(int rank, DevicePtr send, DevicePtr receive, long count) =>
            ranks[rank].Device.Record("ncclAllReduce", [send.Address, receive.Address, (ulong)count], () => inner.AllReduceSum(rank, send, receive, count));

        public override void AllGather(int rank, DevicePtr send, DevicePtr receive, long count) =>
            ranks[rank].Device.Record("ncclAllGather", [send.Address, receive.Address, (ulong)count], () => inner.AllGather(rank, send, receive, count));

        public override void Abort() => inner.Abort();
        public override void Dispose() => inner.Dispose();
    }
}
