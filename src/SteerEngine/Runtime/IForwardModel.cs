using SteerEngine.Capture;
using SteerEngine.Generation;
using SteerEngine.Model;

namespace SteerEngine.Runtime;

/// <summary>
/// What a backend offers the generator, scorer and capture code: the forward pass of
/// <see cref="Transformer"/> (same batch contract, same logits layout, same hidden-state entries).
/// </summary>
public interface IForwardModel : IDisposable
{
    ModelConfig Config { get; }
    KvCache NewCache(int capacity = 64);
    float[][] Forward(IReadOnlyList<ForwardSequence> batch, IHiddenStateSink? sink = null);
}

/// <summary>The exact f32 CPU path as an <see cref="IForwardModel"/>.</summary>
public sealed class CpuForwardModel(Transformer transformer) : IForwardModel
{
    public Transformer Transformer { get; } = transformer;
    public ModelConfig Config => Transformer.Config;
    public KvCache NewCache(int capacity = 64) => Transformer.NewCache(capacity);
    public float[][] Forward(IReadOnlyList<ForwardSequence> batch, IHiddenStateSink? sink = null) => Transformer.Forward(batch, sink);
    public void Dispose() => Transformer.Dispose();
}
