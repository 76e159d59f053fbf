using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda;

public sealed partial class CudaTransformer
{
    /// <summary>The CUDA residual kernel applies every operation at the block output; other hooks are refused when a request is admitted.</summary>
    public (string Field, string Message)? RefuseSteering(SteeringAdd term) => BlockOutputOnly.Refuse(term, "cuda");
}
