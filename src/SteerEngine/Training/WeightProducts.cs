using System.Numerics.Tensors;
using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Training.Backward;

namespace SteerEngine.Training;

/// <summary>
/// The frozen-weight products of a training pass: y = x · Wᵀ in the forward and dx = dy · W in the backward.
/// <see cref="Exact"/> is the f32 reference (weights widened exactly, nothing rounded); <see cref="Create"/> with a
/// fast kernel choice runs both on the packed bf16 GEMM (x and dy rounded to bf16, f32 accumulation), the backward
/// on Wᵀ packed by <see cref="TransposedPack"/>. Matrices are packed on first use and kept, so a trainer packs
/// each layer it steers above once (forward and transposed: twice the bf16 weights) and the layers below once.
/// Not reentrant: one pass at a time.
/// </summary>
public abstract class WeightProducts : IDisposable
{
    /// <summary>"exact", "native" or "managed".</summary>
    public abstract string Name { get; }

    /// <summary>y = x · Wᵀ. x: (rows, W.Cols); y: (rows, W.Rows), overwritten</summary>
    public abstract void Forward(ReadOnlySpan<float> x, WeightMatrix w, Span<float> y, int rows);

    /// <summary>dx (+)= dy · W. dy: (rows, W.Rows); dx: (rows, W.Cols), accumulated into when <paramref name="accumulate"/></summary>
    public abstract void Backward(ReadOnlySpan<float> dy, WeightMatrix w, Span<float> dx, int rows, bool accumulate = false);

    /// <summary>True for the f32 reference products.</summary>
    public bool IsExact => ReferenceEquals(this, Exact);

    public virtual void Dispose() { }

    /// <summary>The f32 reference products.</summary>
    public static WeightProducts Exact { get; } = new ExactProducts();

    /// <summary>The products for a kernel choice: <see cref="Exact"/> for <see cref="CpuKernelChoice.Exact"/>, else packed bf16.</summary>
    public static WeightProducts Create(CpuKernelChoice choice) =>
        CpuKernels.Create(choice) is { } kernels ? new PackedProducts(kernels) : Exact;

    sealed class ExactProducts : WeightProducts
    {
        public override string Name => "exact";
        public override void Forward(ReadOnlySpan<float> x, WeightMatrix w, Span<float> y, int rows) => MatMul.Forward(x, w, y, rows);
        public override void Backward(ReadOnlySpan<float> dy, WeightMatrix w, Span<float> dx, int rows, bool accumulate = false) =>
            MatMulBackward.Backward(dy, w, dx, rows, accumulate);
    }

    sealed class PackedProducts(ICpuKernels kernels) : WeightProducts
    {
        readonly Dictionary<WeightMatrix, PackedMatrix> _forward = new(ReferenceEqualityComparer.Instance);
        readonly Dictionary<WeightMatrix, PackedMatrix> _transposed = new(ReferenceEqualityComparer.Instance);
        float[] _scratch = [];

        public override string Name => kernels.Name;

        public override void Forward(ReadOnlySpan<float> x, WeightMatrix w, Span<float> y, int rows) =>
            kernels.MatMul(x[..(rows * w.Cols)], Packed(_forward, w, kernels.Pack), y, rows);

        public override void Backward(ReadOnlySpan<float> dy, WeightMatrix w, Span<float> dx, int rows, bool accumulate = false)
        {
            PackedMatrix wt = Packed(_transposed, w, TransposedPack.Pack);
            int n = rows * w.Cols;
            if (!accumulate)
            {
                kernels.MatMul(dy[..(rows * w.Rows)], wt, dx, rows);
                return;
            }
            if (_scratch.Length < n) _scratch = new float[n];
            kernels.MatMul(dy[..(rows * w.Rows)], wt, _scratch, rows);
            TensorPrimitives.Add(dx[..n], _scratch.AsSpan(0, n), dx[..n]);
        }

        static PackedMatrix Packed(Dictionary<WeightMatrix, PackedMatrix> cache, WeightMatrix w, Func<WeightMatrix, PackedMatrix> pack)
        {
            if (!cache.TryGetValue(w, out PackedMatrix? p)) cache[w] = p = pack(w);
            return p;
        }

        public override void Dispose()
        {
            foreach (PackedMatrix p in _forward.Values.Concat(_transposed.Values)) p.Dispose();
            _forward.Clear();
            _transposed.Clear();
        }
    }
}
