using SteerEngine.Runtime.Cuda;
using SteerEngine.Tests.Support;

namespace SteerEngine.Tests.Cuda;

/// <summary>
/// The cuBLAS call the backend makes (Linear.Forward), run by the emulated cublasGemmEx with the real
/// library's column-major / transpose / leading-dimension semantics: the right product for the
/// parameters the backend passes, and a wrong product or an error for a layout mistake.
/// </summary>
[TestFixture]
public class GemmTests
{
    const int Rows = 5, In = 37, Out = 23; // nothing square, nothing a multiple of a tile

    static (CudaDevice D, DevicePtr X, DevicePtr W, DevicePtr Y, float[] Want) Setup()
    {
        CudaDevice d = Emulator.UnderTest();
        var rng = new Random(8);
        float[] x = Compare.RandomVector(rng, Rows * In).Select(v => DeviceWeights.FromBf16(DeviceWeights.ToBf16(v))).ToArray();
        float[] w = Compare.RandomVector(rng, Out * In).Select(v => DeviceWeights.FromBf16(DeviceWeights.ToBf16(v))).ToArray();
        var want = new float[Rows * Out]; // y = x · Wᵀ, row-major
        for (int r = 0; r < Rows; r++)
            for (int o = 0; o < Out; o++)
            {
                double s = 0;
                for (int i = 0; i < In; i++) s += (double)x[r * In + i] * w[o * In + i];
                want[r * Out + o] = (float)s;
            }
        DevicePtr X = d.AllocUpload<ushort>(x.Select(DeviceWeights.ToBf16).ToArray());
        DevicePtr W = d.AllocUpload<ushort>(w.Select(DeviceWeights.ToBf16).ToArray());
        DevicePtr Y = d.Alloc(Rows * Out * 4);
        return (d, X, W, Y, want);
    }

    static float[] Read(CudaDevice d, DevicePtr y)
    {
        var r = new float[Rows * Out];
        d.Download<float>(y, r);
        return r;
    }

    [Test]
    public void The_backend_gemm_parameters_give_x_times_w_transposed()
    {
        var (d, x, w, y, want) = Setup();
        using (d)
        {
            Linear.Forward(d, x, w, y, Rows, Out, In);
            Assert.That(Compare.RelativeMaxError(Read(d, y), want), Is.LessThan(1e-6));
        }
    }

    [Test]
    public void A_swapped_transpose_gives_a_wrong_product_or_an_error()
    {
        var (d, x, w, y, want) = Setup();
        using (d)
        {
            // W read as if it were stored (in, out) row-major: op(A) = N with lda = out.
            d.GemmEx(GemmOp.N, GemmOp.N, Out, Rows, In, 1f, w, CudaDataType.BF16, Out, x, CudaDataType.BF16, In, 0f, y, CudaDataType.F32, Out);
            Assert.That(Compare.RelativeMaxError(Read(d, y), want), Is.GreaterThan(0.1));
            // The row-major habit for C's leading dimension (rows instead of out): ldc < m, which cuBLAS rejects.
            Assert.That(() => d.GemmEx(GemmOp.T, GemmOp.N, Out, Rows, In, 1f, w, CudaDataType.BF16, In, x, CudaDataType.BF16, In, 0f, y, CudaDataType.F32, Rows),
                Throws.TypeOf<CudaException>().With.Message.Contains("cublasStatus 7"));
            // Operands swapped (the row-major habit): yᵀ computed into a (rows × out) column-major C.
            d.GemmEx(GemmOp.T, GemmOp.N, Rows, Out, In, 1f, x, CudaDataType.BF16, In, w, CudaDataType.BF16, In, 0f, y, CudaDataType.F32, Rows);
            Assert.That(Compare.RelativeMaxError(Read(d, y), want), Is.GreaterThan(0.1));
        }
    }

    [Test]
    public void Beta_accumulates_into_c_and_bf16_output_rounds()
    {
        var (d, x, w, y, want) = Setup();
        using (d)
        {
            Linear.Forward(d, x, w, y, Rows, Out, In);
            d.GemmEx(GemmOp.T, GemmOp.N, Out, Rows, In, 2f, w, CudaDataType.BF16, In, x, CudaDataType.BF16, In, 1f, y, CudaDataType.F32, Out);
            Assert.That(Compare.RelativeMaxError(Read(d, y), want.Select(v => 3 * v).ToArray()), Is.LessThan(1e-6));
        }
    }
}
