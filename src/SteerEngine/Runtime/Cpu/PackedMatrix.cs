using System.Runtime.InteropServices;

namespace SteerEngine.Runtime.Cpu;

/// <summary>
/// A weight matrix W (Rows = out, Cols = in) repacked for the GEMM micro-kernels: bf16 in panels of
/// 16 output rows, k in pairs, 64 bytes per (panel, pair), panel-major, zero-padded (native/cpu/steer_cpu.h).
/// Element (r, c) sits at ushort index ((r / 16) · Pairs + c / 2) · 32 + (r % 16) · 2 + c % 2.
/// Owns its 64-byte-aligned native buffer.
/// </summary>
public sealed unsafe class PackedMatrix : IDisposable
{
    public PackedMatrix(string name, int rows, int cols)
    {
        if (rows <= 0 || cols <= 0) throw new ArgumentException($"packed matrix {name}: shape ({rows}, {cols}) must be positive");
        Name = name;
        Rows = rows;
        Cols = cols;
        Bytes = SizeInBytes(rows, cols);
        Data = (ushort*)NativeMemory.AlignedAlloc((nuint)Bytes, 64);
    }

    public string Name { get; }
    public int Rows { get; }
    public int Cols { get; }
    public int Panels => (Rows + 15) / 16;
    public int Pairs => (Cols + 1) / 2;
    public long Bytes { get; }
    public ushort* Data { get; private set; }

    public static long SizeInBytes(int rows, int cols) => (long)((rows + 15) / 16) * ((cols + 1) / 2) * 64;

    /// <summary>
    /// The parts' rows one after another, as one matrix (Q, K and V as one product): panel-major
    /// packing makes that a byte copy when every part but the last has whole panels. Null when the
    /// parts do not stack (their column counts differ, or a part ends mid-panel).
    /// </summary>
    public static PackedMatrix? Stack(string name, IReadOnlyList<PackedMatrix> parts)
    {
        if (parts.Count == 0 || parts.Any(p => p.Cols != parts[0].Cols) || parts.SkipLast(1).Any(p => p.Rows % 16 != 0)) return null;
        var stacked = new PackedMatrix(name, parts.Sum(p => p.Rows), parts[0].Cols);
        byte* dst = (byte*)stacked.Data;
        foreach (PackedMatrix p in parts)
        {
            Buffer.MemoryCopy(p.Data, dst, p.Bytes, p.Bytes);
            dst += p.Bytes;
        }
        return stacked;
    }

    public void Dispose()
    {
        if (Data is null) return;
        NativeMemory.AlignedFree(Data);
        Data = null;
    }
}
