using SteerEngine.Steering;

namespace SteerEngine.Runtime.Cuda;

public sealed partial class CudaTransformer
{
    /// <summary>
    /// The CUDA residual kernel applies every operation at both residual adds (resid_post and resid_mid);
    /// attn_z is refused when a request is admitted.
    /// </summary>
    public (string Field, string Message)? RefuseSteering(SteeringAdd term) =>
        term.Hook == SteeringHook.AttnZ ? ("hook", "hook attn_z runs on the CPU backend only; the cuda backend steers resid_post and resid_mid") : null;
}
