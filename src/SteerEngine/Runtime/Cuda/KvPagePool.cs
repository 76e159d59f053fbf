namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// One rank's KV pages: fixed-size device buffers, each (layers, 2, page positions, kvd_rank) bf16,
/// that sequences take as they grow and give back when they end. A page is allocated once and
/// then reused, so a step's sequences cost no allocation once the pool is as large as the largest
/// batch's caches, and growing a sequence never copies what it holds. Each page is its own device
/// allocation, so the emulator's bounds checks catch an access past any page.
/// </summary>
sealed class KvPagePool(CudaDevice device, long pageBytes)
{
    readonly Stack<DevicePtr> _free = [];

    public long PageBytes { get; } = pageBytes;
    /// <summary>Pages allocated from the device so far (held by sequences or free).</summary>
    public int Allocated { get; private set; }
    public int Free => _free.Count;

    public DevicePtr Take()
    {
        if (_free.TryPop(out DevicePtr page)) return page;
        Allocated++;
        return device.Alloc(PageBytes);
    }

    public void Return(IEnumerable<DevicePtr> pages)
    {
        foreach (DevicePtr p in pages) _free.Push(p);
    }
}
