using SteerEngine.Generation;
using SteerEngine.Runtime;
using SteerEngine.Runtime.Cpu;
using SteerEngine.Steering;

namespace SteerEngine.Model;

/// <summary>
/// The ops of <see cref="Transformer.Forward"/>, each dispatched to the exact reference kernel or to
/// the fast kernel set, and timed into <see cref="Profile"/> when it is set. Kept apart so the
/// forward pass itself reads like the model card. Buffers may be longer than the rows in use.
/// </summary>
public sealed partial class Transformer
{
    float Eps => (float)Config.RmsNormEps;

    /// <summary>x, y: (rows, n) with n = weight length; may alias.</summary>
    void Norm(float[] x, float[] weight, float[] y, int rows)
    {
        long t0 = OpProfile.Start();
        int n = rows * weight.Length;
        if (_fast is null) RmsNorm.Forward(x.AsSpan(0, n), weight, y.AsSpan(0, n), rows, Eps);
        else _fast.RmsNorm(x.AsSpan(0, n), weight, y.AsSpan(0, n), rows, Eps);
        Profile?.Stop("rmsnorm", t0);
    }

    /// <summary>y = x · Wᵀ. x: (rows, in); y: (rows, out)</summary>
    void Linear(string name, float[] x, WeightMatrix w, PackedMatrix? packed, float[] y, int rows)
    {
        long t0 = OpProfile.Start();
        ReadOnlySpan<float> input = x.AsSpan(0, rows * w.Cols);
        Span<float> output = y.AsSpan(0, rows * w.Rows);
        if (_fast is null) MatMul.Forward(input, w, output, rows);
        else _fast.MatMul(input, packed!, output, rows);
        Profile?.Stop(name, t0);
    }

    /// <summary>x: (rows, heads·hd), rotated in place at each row's position.</summary>
    void Rotate(float[] x, int rows, int heads, int[] positions)
    {
        long t0 = OpProfile.Start();
        int width = heads * Config.HeadDim;
        if (_fast is not null) _fast.Rope(x.AsSpan(0, rows * width), rows, heads, Config.HeadDim, positions, _invFreq);
        else
            for (int r = 0; r < rows; r++) _rope.Apply(x.AsSpan(r * width, width), heads, positions[r]);
        Profile?.Stop("rope", t0);
    }

    /// <summary>Writes each sequence's new K/V rows into its cache, then attends over the cache. q, att: (T, nh·hd)</summary>
    unsafe void Attend(IReadOnlyList<ForwardSequence> batch, int layer, float[] q, float[] k, float[] v, float[] att)
    {
        long t0 = OpProfile.Start();
        ModelConfig c = Config;
        int r = 0;
        var sequences = _fast is null ? null : new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
        {
            ForwardSequence seq = batch[s];
            int n = seq.Tokens.Length, start = seq.Cache.Length, len = start + n;
            Span<float> keys = seq.Cache.Keys(layer, len);
            Span<float> values = seq.Cache.Values(layer, len);
            k.AsSpan(r * c.KvDim, n * c.KvDim).CopyTo(keys[(start * c.KvDim)..]);
            v.AsSpan(r * c.KvDim, n * c.KvDim).CopyTo(values[(start * c.KvDim)..]);
            if (sequences is not null)
                sequences[s] = new AttentionSequence(seq.Cache.KeysPointer(layer), seq.Cache.ValuesPointer(layer), r, n, start);
            else
                Attention.Forward(q.AsSpan(r * c.QDim, n * c.QDim), keys, values, att.AsSpan(r * c.QDim, n * c.QDim),
                    n, start, c.NumHeads, c.NumKvHeads, c.HeadDim);
            r += n;
        }
        if (sequences is not null) _fast!.Attention(q.AsSpan(0, r * c.QDim), att.AsSpan(0, r * c.QDim), sequences, c.NumHeads, c.NumKvHeads, c.HeadDim);
        Profile?.Stop("attention", t0);
    }

    /// <summary>x ← x + delta, then every row's steering terms of this layer at <paramref name="hook"/> (a residual hook point).</summary>
    void AddResidualAndSteer(float[] x, float[] delta, int rows, int layer, SteeringHook hook, BatchSteering steering)
    {
        long t0 = OpProfile.Start();
        int n = rows * Config.HiddenSize;
        bool steered = steering.Uses(layer, hook);
        if (_fast is null)
            ResidualAdd.ForwardSteered(x.AsSpan(0, n), delta.AsSpan(0, n), Config.HiddenSize, layer, hook, steering.OfRow, steering.PositionOfRow);
        else
            _fast.ResidualAddSteered(x.AsSpan(0, n), delta.AsSpan(0, n), rows, Config.HiddenSize, steered ? steering.ForLayer(layer, hook) : default);
        Profile?.Stop(steered ? "residual + steering" : "residual", t0);
    }

    /// <summary>Every row's steering terms of this layer at attn.hook_z, on the attention output before o_proj. att: (rows, nh·hd)</summary>
    void SteerAttention(float[] att, int rows, int layer, BatchSteering steering)
    {
        if (!steering.Uses(layer, SteeringHook.AttnZ)) return;
        long t0 = OpProfile.Start();
        int width = Config.QDim, n = rows * width;
        if (_fast is null)
            ResidualAdd.ForwardSteered(att.AsSpan(0, n), default, width, layer, SteeringHook.AttnZ, steering.OfRow, steering.PositionOfRow);
        else
            _fast.ResidualAddSteered(att.AsSpan(0, n), default, rows, width, steering.ForLayer(layer, SteeringHook.AttnZ));
        Profile?.Stop("attention steering", t0);
    }

    void Swiglu(float[] gate, float[] up, int rows)
    {
        long t0 = OpProfile.Start();
        int n = rows * Config.IntermediateSize;
        if (_fast is null) SwiGlu.Forward(gate.AsSpan(0, n), up.AsSpan(0, n));
        else _fast.SwiGlu(gate.AsSpan(0, n), up.AsSpan(0, n));
        Profile?.Stop("swiglu", t0);
    }

    /// <summary>
    /// q, k, v = x · W_qᵀ, x · W_kᵀ, x · W_vᵀ. With the fast kernels, one product over the stacked
    /// matrices when they stack (one pass over x, one task split), then the columns go to q, k, v;
    /// every output is the same chain either way, so the bits do not change.
    /// </summary>
    void QkvProjection(float[] xn, LayerWeights w, PackedLayer? p, float[] qkv, float[] q, float[] k, float[] v, int rows)
    {
        if (p?.Qkv is null)
        {
            Linear("q_proj", xn, w.Q, p?.Q, q, rows);
            Linear("k_proj", xn, w.K, p?.K, k, rows);
            Linear("v_proj", xn, w.V, p?.V, v, rows);
            return;
        }
        long t0 = OpProfile.Start();
        int qd = Config.QDim, kd = Config.KvDim, width = qd + 2 * kd;
        _fast!.MatMul(xn.AsSpan(0, rows * w.Q.Cols), p.Qkv, qkv.AsSpan(0, rows * width), rows);
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<float> row = qkv.AsSpan(r * width, width);
            row[..qd].CopyTo(q.AsSpan(r * qd, qd));
            row.Slice(qd, kd).CopyTo(k.AsSpan(r * kd, kd));
            row.Slice(qd + kd, kd).CopyTo(v.AsSpan(r * kd, kd));
        }
        Profile?.Stop("qkv_proj", t0);
    }

    /// <summary>A block's matrices packed for the fast kernels: Q, K and V stacked as one (Qkv) when they stack, else apart.</summary>
    sealed class PackedLayer : IDisposable
    {
        public PackedMatrix? Qkv, Q, K, V;
        public required PackedMatrix O, Gate, Up, Down;

        public static PackedLayer Pack(ICpuKernels k, LayerWeights w)
        {
            var packed = new PackedLayer
            {
                Q = k.Pack(w.Q), K = k.Pack(w.K), V = k.Pack(w.V), O = k.Pack(w.O),
                Gate = k.Pack(w.Gate), Up = k.Pack(w.Up), Down = k.Pack(w.Down),
            };
            packed.Qkv = PackedMatrix.Stack($"{w.Q.Name}+k+v", [packed.Q!, packed.K!, packed.V!]);
            if (packed.Qkv is not null)
            {
                foreach (PackedMatrix m in new[] { packed.Q!, packed.K!, packed.V! }) m.Dispose();
                packed.Q = packed.K = packed.V = null;
            }
            foreach (WeightMatrix m in new[] { w.Q, w.K, w.V, w.O, w.Gate, w.Up, w.Down }) m.ReleasePages();
            return packed;
        }

        public void Dispose()
        {
            foreach (PackedMatrix? m in new[] { Qkv, Q, K, V, O, Gate, Up, Down }) m?.Dispose();
        }
    }
}
