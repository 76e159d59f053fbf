namespace SteerEngine.Runtime.Cuda;

/// <summary>A failed CUDA, NVRTC, cuBLAS or NCCL call (real or emulated), with the call and its status.</summary>
public sealed class CudaException(string message) : Exception(message);
