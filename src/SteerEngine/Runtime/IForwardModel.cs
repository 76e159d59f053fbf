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
