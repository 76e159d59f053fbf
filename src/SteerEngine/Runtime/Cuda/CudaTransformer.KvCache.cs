using SteerEngine.Generation;

namespace SteerEngine.Runtime.Cuda;

// The sequences' KV caches on the devices: pages from each rank's pool (a sequence takes pages as
// it grows and gives them back when it ends: no copy, no allocation once the pool is warm), or one
// contiguous region per sequence. The kernels read both the same way (KvPages in kernels/common.cuh):
// a contiguous cache is one page as large as its capacity.
public sealed partial class CudaTransformer
{
    /// <summary>
    /// Positions per KV page: 256 by default (STEER_CUDA_KV_PAGE sets it); 0 gives each sequence one
    /// contiguous region at the capacity its KvCache was reserved with, grown past it by copying.
    /// Set before the first forward pass.
    /// </summary>
    public int KvPagePositions { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("STEER_CUDA_KV_PAGE"), out int p) && p >= 0 ? p : 256;

    KvPagePool[]? _kvPools; // per rank, made at the first paged cache

    /// <summary>KV pages allocated so far and free in the pools, over all ranks (0, 0 before the first paged cache).</summary>
    public (int Allocated, int Free) KvPages => _kvPools is null ? (0, 0) : (_kvPools.Sum(q => q.Allocated), _kvPools.Sum(q => q.Free));

    /// <summary>One sequence's cache on every rank: its pages, PagePositions positions each (one page per rank when contiguous).</summary>
    sealed class SequenceKv(bool paged, int ranks)
    {
        public bool Paged { get; } = paged;
        public int PagePositions { get; set; }
        public List<DevicePtr>[] Pages { get; } = Enumerable.Range(0, ranks).Select(_ => new List<DevicePtr>()).ToArray();
        public int Capacity => Pages[0].Count * PagePositions;
        /// <summary>The positions its KvCache is reserved for (what a graphed step's key splits cover).</summary>
        public int Reserved { get; set; }
    }

    /// <summary>
    /// The device cache of a sequence, able to hold <paramref name="tokens"/> positions. Paged: the
    /// pages it lacks are taken from the pools. Contiguous: first allocated at the capacity its
    /// KvCache was made or reserved with (the generator reserves prompt + new tokens, so generation
    /// never grows it), grown (contents copied) only past that.
    /// </summary>
    SequenceKv DeviceCache(KvCache cache, int tokens)
    {
        if (!_kv.TryGetValue(cache, out SequenceKv? kv))
        {
            kv = new SequenceKv(KvPagePositions > 0, _ranks.Length);
            _kv.Add(cache, kv);
            _kvAll.Add((new WeakReference<KvCache>(cache), kv));
        }
        kv.Reserved = cache.Capacity;
        if (kv.Capacity >= tokens) return kv;
        if (kv.Paged) TakePages(kv, tokens);
        else GrowContiguous(kv, Math.Max(tokens, kv.Capacity == 0 ? cache.Capacity : kv.Capacity * 2));
        return kv;
    }

    void TakePages(SequenceKv kv, int tokens)
    {
        if (_kvPools is null)
        {
            int P = KvPagePositions;
            _kvPools = _ranks.Select(r => new KvPagePool(r.Device, (long)Config.NumLayers * 2 * P * r.Shape.KvDim * 2)).ToArray();
            _kvPoolPositions = P;
        }
        if (KvPagePositions != _kvPoolPositions)
            throw new InvalidOperationException($"KvPagePositions changed from {_kvPoolPositions} to {KvPagePositions} after the first forward pass");
        kv.PagePositions = _kvPoolPositions;
        while (kv.Capacity < tokens)
            for (int r = 0; r < _ranks.Length; r++) kv.Pages[r].Add(_kvPools[r].Take());
    }

    int _kvPoolPositions;

    void GrowContiguous(SequenceKv kv, int capacity)
    {
        int L = Config.NumLayers;
        for (int r = 0; r < _ranks.Length; r++)
        {
            CudaDevice d = _ranks[r].Device;
            long rowBytes = (long)_ranks[r].Shape.KvDim * 2;
            DevicePtr region = d.Alloc(L * 2L * capacity * rowBytes);
            if (kv.Pages[r].Count == 1)
            {
                DevicePtr old = kv.Pages[r][0];
                for (int block = 0; block < 2 * L; block++) // each layer's K and V keep their rows
                    d.CopyOnDevice(region + block * capacity * rowBytes, old + block * kv.PagePositions * rowBytes, kv.PagePositions * rowBytes);
                d.Free(old);
            }
            kv.Pages[r].Clear();
            kv.Pages[r].Add(region);
        }
        kv.PagePositions = capacity;
    }

    /// <summary>Gives a sequence's device cache back: its pages to the pools, a contiguous region to the device.</summary>
    void Drop(SequenceKv kv)
    {
        for (int r = 0; r < _ranks.Length; r++)
        {
            if (kv.Paged) _kvPools![r].Return(kv.Pages[r]);
            else foreach (DevicePtr region in kv.Pages[r]) _ranks[r].Device.Free(region);
            kv.Pages[r].Clear();
        }
    }

    /// <summary>Frees the device caches of sequences whose KvCache object is gone.</summary>
    void FreeDeadCaches()
    {
        for (int i = _kvAll.Count - 1; i >= 0; i--)
        {
            if (_kvAll[i].Cache.TryGetTarget(out _)) continue;
            Drop(_kvAll[i].Kv);
            _kvAll.RemoveAt(i);
        }
    }

    /// <summary>Frees a sequence's device cache now (it may be used again: it restarts empty).</summary>
    public void Release(KvCache cache)
    {
        if (!_kv.TryGetValue(cache, out SequenceKv? kv)) return;
        Drop(kv);
        _kv.Remove(cache);
        _kvAll.RemoveAll(e => ReferenceEquals(e.Kv, kv));
    }

    /// <summary>(Σ pages) u64: every sequence's page addresses on one rank, in batch order.</summary>
    static ulong[] KvPageTable(Plan p, int rank) => p.Kv.SelectMany(k => k.Pages[rank]).Select(page => page.Address).ToArray();

    /// <summary>(S, 2): each sequence's first entry in the page table and its positions per page.</summary>
    static int[] KvLayout(Plan p)
    {
        var layout = new int[2 * p.Kv.Length];
        for (int s = 0, first = 0; s < p.Kv.Length; first += p.Kv[s].Pages[0].Count, s++)
        {
            layout[2 * s] = first;
            layout[2 * s + 1] = p.Kv[s].PagePositions;
        }
        return layout;
    }
}
