namespace SteerEngine.Generation;

/// <summary>
/// One sequence's keys and values for every layer, f32, growing as tokens are appended.
/// Rows 0..Length-1 are committed; a forward pass writes rows Length..Length+n-1 and then commits them.
/// The arrays live on the pinned heap so native attention kernels can read them by pointer.
/// </summary>
public sealed class KvCache
{
    readonly int _kvDim;
    float[][] _keys;   // per layer (capacity, nkv*hd)
    float[][] _values; // per layer (capacity, nkv*hd)
    int _capacity;

    public KvCache(int layers, int kvDim, int initialCapacity = 64)
    {
        _kvDim = kvDim;
        _capacity = Math.Max(1, initialCapacity);
        _keys = new float[layers][];
        _values = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            _keys[l] = GC.AllocateUninitializedArray<float>(_capacity * kvDim, pinned: true);
            _values[l] = GC.AllocateUninitializedArray<float>(_capacity * kvDim, pinned: true);
        }
    }

    public int Length { get; private set; }

    /// <summary>Tokens the cache holds without growing (what the generator reserved: prompt + new tokens).</summary>
    public int Capacity => _capacity;

    public void Reserve(int tokens)
    {
        if (tokens <= _capacity) return;
        int capacity = Math.Max(tokens, _capacity * 2);
        for (int l = 0; l < _keys.Length; l++)
        {
            _keys[l] = Grow(_keys[l], capacity * _kvDim, Length * _kvDim);
            _values[l] = Grow(_values[l], capacity * _kvDim, Length * _kvDim);
        }
        _capacity = capacity;
    }

    static float[] Grow(float[] old, int size, int used)
    {
        float[] grown = GC.AllocateUninitializedArray<float>(size, pinned: true);
        old.AsSpan(0, used).CopyTo(grown);
        return grown;
    }

    /// <summary>Keys of layer <paramref name="layer"/>, rows 0..<paramref name="rows"/>-1. (rows, nkv*hd)</summary>
    public Span<float> Keys(int layer, int rows) => _keys[layer].AsSpan(0, rows * _kvDim);
    public Span<float> Values(int layer, int rows) => _values[layer].AsSpan(0, rows * _kvDim);

    /// <summary>Address of layer <paramref name="layer"/>'s key rows, for native kernels (the array is pinned).</summary>
    public unsafe float* KeysPointer(int layer) => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(
        ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_keys[layer]));

    public unsafe float* ValuesPointer(int layer) => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(
        ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_values[layer]));

    /// <summary>Forgets rows from <paramref name="length"/> on (to reuse a shared prefix, or to rerun a benchmark step).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), $"cannot truncate a cache of {Length} rows to {length}");
        Length = length;
    }

    /// <summary>False for a cache whose rows live elsewhere (a device's memory): it keeps only the length.</summary>
    public bool HoldsRows => _keys.Length > 0;

    /// <summary>Fills this empty cache with <paramref name="source"/>'s first <paramref name="rows"/> rows (a shared prompt prefix).</summary>
    public void CopyPrefixFrom(KvCache source, int rows)
    {
        if (Length != 0) throw new InvalidOperationException($"a prefix is copied into an empty cache, not one of {Length} rows");
        if (rows > source.Length || source._kvDim != _kvDim || source._keys.Length != _keys.Length)
            throw new ArgumentException($"cannot copy {rows} rows from a cache of {source.Length} rows of another shape", nameof(source));
        Reserve(rows);
        for (int l = 0; l < _keys.Length; l++)
        {
            source._keys[l].AsSpan(0, rows * _kvDim).CopyTo(_keys[l]);
            source._values[l].AsSpan(0, rows * _kvDim).CopyTo(_values[l]);
        }
        Length = rows;
    }

    public void Commit(int tokens)
    {
        if (Length + tokens > _capacity) throw new InvalidOperationException("KV cache commit past reserved capacity");
        Length += tokens;
    }
}
