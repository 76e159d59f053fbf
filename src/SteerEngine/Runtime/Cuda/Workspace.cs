using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SteerEngine.Runtime.Cuda;

/// <summary>
/// Named buffers of one rank that grow to the largest batch seen and are then reused: device
/// buffers, page-locked host buffers, and the step's inputs (<see cref="Upload"/>).
/// </summary>
sealed unsafe class Workspace(CudaDevice device) : IDisposable
{
    readonly Dictionary<string, (DevicePtr Pointer, long Bytes)> _buffers = [];
    readonly Dictionary<string, (IntPtr Pointer, long Bytes)> _host = [];

    /// <summary>Device bytes the buffers hold now.</summary>
    public long DeviceBytes => _buffers.Values.Sum(b => b.Bytes);

    /// <summary>
    /// The buffer <paramref name="name"/> of at least <paramref name="bytes"/>; one that must grow is freed, then allocated
    /// half as large again (so batches that grow a little do not reallocate every time), or at exactly
    /// <paramref name="bytes"/> with <paramref name="exact"/> (a buffer sized to a memory budget).
    /// </summary>
    public DevicePtr Get(string name, long bytes, bool exact = false)
    {
        bytes = Math.Max(bytes, 16);
        if (_buffers.TryGetValue(name, out var b) && b.Bytes >= bytes) return b.Pointer;
        if (!b.Pointer.IsNull) device.Free(b.Pointer);
        long size = SizeAfter(name, bytes, exact);
        DevicePtr p = device.Alloc(size);
        _buffers[name] = (p, size);
        return p;
    }

    /// <summary>The bytes buffer <paramref name="name"/> holds after <see cref="Get"/> of <paramref name="bytes"/>.</summary>
    long SizeAfter(string name, long bytes, bool exact)
    {
        bytes = Math.Max(bytes, 16);
        long held = _buffers.TryGetValue(name, out var b) ? b.Bytes : 0;
        return held >= bytes ? held : exact ? bytes : Math.Max(bytes, held * 3 / 2);
    }

    /// <summary>
    /// The device bytes the buffers would hold after a <see cref="Get"/> of each of <paramref name="buffers"/> (the
    /// largest request per name), with every other buffer still held: what a pass that asks for these will hold.
    /// </summary>
    public long BytesAfter(IEnumerable<(string Name, long Bytes, bool Exact)> buffers)
    {
        var wanted = new Dictionary<string, long>();
        foreach (var (name, bytes, exact) in buffers)
            wanted[name] = Math.Max(wanted.GetValueOrDefault(name), SizeAfter(name, bytes, exact));
        return wanted.Values.Sum() + _buffers.Where(b => !wanted.ContainsKey(b.Key)).Sum(b => b.Value.Bytes);
    }

    /// <summary>The device bytes <see cref="Upload"/> (not in fixed slots) takes for these arrays.</summary>
    public static long UploadBytes(params ReadOnlySpan<Array> arrays)
    {
        long total = 0;
        foreach (Array a in arrays) total += (Buffer.ByteLength(a) + 15) & ~15L;
        return Math.Max(total, 16);
    }

    /// <summary>A page-locked host buffer (contents not kept on growth).</summary>
    public void* Host(string name, long bytes)
    {
        bytes = Math.Max(bytes, 16);
        if (_host.TryGetValue(name, out var b) && b.Bytes >= bytes) return (void*)b.Pointer;
        if (b.Pointer != IntPtr.Zero) device.FreeHost((void*)b.Pointer);
        long size = Math.Max(bytes, b.Bytes * 3 / 2);
        void* p = device.AllocHost(size);
        _host[name] = ((IntPtr)p, size);
        return p;
    }

    /// <summary>
    /// The step's small inputs (token ids, positions, cache addresses, steering tables) packed
    /// 16-byte aligned into one page-locked buffer and sent with one asynchronous copy; returns
    /// each array's device address. The host buffer is rewritten by the next call, so the stream
    /// must have passed this copy by then (every step ends with a synchronisation).
    /// With <paramref name="fixedSlots"/> each array gets a slot of the next power of two of its
    /// size, at least 1 KiB, so steps whose arrays differ a little in length (steering entries as
    /// rows gain or lose steering, distinct vectors) still put every array at the same address, as
    /// a replayed graph needs.
    /// </summary>
    public DevicePtr[] Upload(bool fixedSlots, params ReadOnlySpan<Array> arrays)
    {
        var offsets = new long[arrays.Length];
        long total = 0;
        for (int i = 0; i < arrays.Length; i++)
        {
            offsets[i] = total;
            long bytes = (Buffer.ByteLength(arrays[i]) + 15) & ~15L;
            total += fixedSlots ? (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(bytes, 1024)) : bytes;
        }
        byte* host = (byte*)Host("step_inputs", total);
        DevicePtr onDevice = Get("step_inputs", total);
        for (int i = 0; i < arrays.Length; i++)
        {
            int bytes = Buffer.ByteLength(arrays[i]);
            if (bytes > 0) Unsafe.CopyBlockUnaligned(ref host[offsets[i]], ref MemoryMarshal.GetArrayDataReference(arrays[i]), (uint)bytes);
        }
        device.CopyToDeviceAsync(onDevice, host, Math.Max(total, 16));
        var pointers = new DevicePtr[arrays.Length];
        for (int i = 0; i < arrays.Length; i++) pointers[i] = onDevice + offsets[i];
        return pointers;
    }

    public void Dispose()
    {
        foreach ((DevicePtr p, _) in _buffers.Values) device.Free(p);
        _buffers.Clear();
        foreach ((IntPtr p, _) in _host.Values) device.FreeHost((void*)p);
        _host.Clear();
    }
}
