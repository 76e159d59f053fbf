using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda;

public sealed partial class CudaTransformer
{
    /// <summary>The CUDA residual kernel applies add at the block output; other ops and hooks are refused when a request is admitted.</summary>
    public (string Field, string Message)? RefuseSteering(SteeringAdd term) => AddAtBlockOutputOnly.Refuse(term, "cuda");
}
