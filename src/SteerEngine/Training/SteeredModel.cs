using SteerEngine.Model;
using SteerEngine.Runtime.Cpu;

namespace SteerEngine.Training;

/// <summary>
/// Where BiPO's passes run: the CPU (<see cref="CpuBipoBackend"/>) or CUDA devices
/// (Training.Cuda.CudaBipoBackend), each giving the same three steps for a steering layer — prepare a
/// batch (the unsteered prefix, blocks 0..L), a steered forward (summed response log-probs), and its
/// backward (the gradient with respect to the vector).
/// </summary>
public interface IBipoBackend : IDisposable
{
    /// <summary>What the weight products run on, as the trainer reports it: "exact", "native", "managed", "cuda", "cuda-emu".</summary>
    string Kernels { get; }
    ModelConfig Config { get; }

    /// <param name="keepBytes">memory a pass may spend keeping activations instead of recomputing them (a hint)</param>
    ISteeredModel At(int layer, long keepBytes = 0);
}

/// <summary>The model steered at one layer (<see cref="SteeredLogProb"/> on the CPU).</summary>
public interface ISteeredModel
{
    int Layer { get; }

    /// <summary>The batch with its unsteered prefix computed (blocks 0..L), ready for any number of steered passes.</summary>
    ISteeredBatch Prepare(IReadOnlyList<ScoredSequence> sequences);
}

/// <summary>A batch whose prefix has been computed. Only the most recently prepared batch of a model may run passes.</summary>
public interface ISteeredBatch
{
    SequenceBatch Batch { get; }
    /// <summary>Runs blocks L+1.. from h_L + multiplier·vector (H).</summary>
    ISteeredPass Forward(ReadOnlySpan<float> vector, float multiplier);
}

/// <summary>One steered forward pass (<see cref="SteeredPass"/> on the CPU).</summary>
public interface ISteeredPass
{
    /// <summary>(Count) Σ over each sequence's response tokens of log p(token | preceding tokens), steered.</summary>
    double[] LogProbs { get; }
    /// <summary>gradVector += ∂f/∂v where dLogProb[s] = ∂f/∂LogProbs[s]; once per pass.</summary>
    void Backward(ReadOnlySpan<double> dLogProb, Span<float> gradVector);
}

/// <summary>BiPO on the CPU: <see cref="SteeredLogProb"/> over one set of weight products, packed once for the backend's life.</summary>
public sealed class CpuBipoBackend(Transformer model, CpuKernelChoice kernels) : IBipoBackend
{
    readonly WeightProducts _products = WeightProducts.Create(kernels);

    public string Kernels => _products.Name;
    public ModelConfig Config => model.Config;

    /// <summary>
    /// <see cref="BipoOptions.AutoKeep"/> keeps within the default budget, <see cref="BipoOptions.DefaultKeepBytes"/>: host
    /// memory is shared with the weights' page cache and everything else, so a fraction of what is free would be a guess.
    /// </summary>
    public ISteeredModel At(int layer, long keepBytes = 0) =>
        new SteeredLogProb(model, layer, _products, keepBytes == BipoOptions.AutoKeep ? BipoOptions.DefaultKeepBytes : keepBytes);

    public void Dispose() => _products.Dispose();
}
