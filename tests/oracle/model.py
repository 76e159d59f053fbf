"""Llama (3.x) and Qwen3 causal language models: the Hugging Face forward pass, written out.

Mirrors transformers' LlamaForCausalLM / Qwen3ForCausalLM (eager attention) op for op, with
the same module and parameter names, so `model.state_dict()` keys are the checkpoint's names.
Everything runs in one working dtype (float32, or float64 for finite-difference checks); the
only deliberate differences from HF are that HF computes RMSNorm and softmax in float32
whatever the model dtype, while here float64 mode stays float64 throughout.

Shapes: B batch, T sequence, H hidden, nh / nkv query / key-value heads, hd head_dim,
I intermediate, V vocab, L decoder blocks.
"""

import json
import math
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from safetensors_io import read_model_weights


class ModelError(Exception):
    """A model directory we cannot load (bad config, missing or mis-shaped weight)."""


# ----------------------------------------------------------------------------------------
# config

@dataclass
class Config:
    model_type: str  # "llama" or "qwen3"
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Optional[dict]  # None, or the llama3 parameters
    tie_word_embeddings: bool


def load_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror})")
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: not valid JSON ({e})")

    def need(key):
        if key not in raw:
            raise ModelError(f"{path}: missing field {key}")
        return raw[key]

    model_type = need("model_type")
    if model_type not in ("llama", "qwen3"):
        raise ModelError(f"{path}: model_type {model_type!r}; expected 'llama' or 'qwen3'")
    if raw.get("hidden_act", "silu") != "silu":
        raise ModelError(f"{path}: hidden_act {raw['hidden_act']!r}; expected 'silu'")
    for key in ("attention_bias", "mlp_bias"):
        if raw.get(key, False):
            raise ModelError(f"{path}: {key} is true; only bias-free projections are supported")
    if raw.get("use_sliding_window", False):
        raise ModelError(f"{path}: use_sliding_window is true; only full attention is supported")

    # Newer configs nest theta and scaling in rope_parameters; older ones use rope_theta / rope_scaling.
    rope = raw.get("rope_parameters") or {}
    rope_theta = float(rope.get("rope_theta", raw.get("rope_theta", 10000.0)))
    scaling = raw.get("rope_scaling") if "rope_parameters" not in raw else rope
    if scaling is not None and not isinstance(scaling, dict):
        raise ModelError(f"{path}: rope_scaling must be null or an object")
    rope_type = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if rope_type == "default":
        scaling = None
    elif rope_type == "llama3":
        for key in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            if key not in scaling:
                raise ModelError(f"{path}: rope_scaling of type llama3 is missing {key}")
    else:
        raise ModelError(f"{path}: rope type {rope_type!r}; expected 'default' or 'llama3'")

    hidden, heads = int(need("hidden_size")), int(need("num_attention_heads"))
    kv_heads = int(raw.get("num_key_value_heads") or heads)
    if heads % kv_heads != 0:
        raise ModelError(f"{path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    return Config(
        model_type=model_type,
        vocab_size=int(need("vocab_size")),
        hidden_size=hidden,
        intermediate_size=int(need("intermediate_size")),
        num_layers=int(need("num_hidden_layers")),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=int(raw.get("head_dim") or hidden // heads),
        rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
        rope_theta=rope_theta,
        rope_scaling=scaling,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", False)),
    )


# ----------------------------------------------------------------------------------------
# ops

def rms_norm(x, weight, eps):
    # x (..., D), weight (D,)
    variance = x.pow(2).mean(-1, keepdim=True)  # (..., 1)
    return weight * (x * torch.rsqrt(variance + eps))


def rope_inv_freq(cfg):
    """Inverse frequencies (hd/2,), float32, exactly as HF computes them (float32 throughout)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if cfg.rope_scaling is not None:
        inv_freq = llama3_scale_inv_freq(inv_freq, cfg.rope_scaling)
    return inv_freq


def llama3_scale_inv_freq(inv_freq, scaling):
    """HF _compute_llama3_parameters: long wavelengths slowed by `factor`, short ones kept,
    a smooth blend in between."""
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor

    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rope_cos_sin(inv_freq, seq_len, dtype):
    """cos, sin (T, hd) for positions 0..T-1. In float32 this is HF's arithmetic
    (angle = float32(pos) * inv_freq, in float32); float64 mode widens inv_freq first."""
    positions = torch.arange(seq_len, dtype=torch.int64).to(dtype)  # (T,)
    freqs = positions[:, None] * inv_freq.to(dtype)[None, :]  # (T, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, hd)
    return emb.cos(), emb.sin()


def rotate_half(x):
    # x (..., hd) -> (-x2, x1) with x1 / x2 the first / second half of head_dim (not interleaved)
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, cos, sin):
    # x (B, heads, T, hd), cos / sin (T, hd)
    return (x * cos) + (rotate_half(x) * sin)


def repeat_kv(x, n_rep):
    # (B, nkv, T, hd) -> (B, nkv*n_rep, T, hd); query head h reads kv head h // n_rep
    B, nkv, T, hd = x.shape
    return x[:, :, None, :, :].expand(B, nkv, n_rep, T, hd).reshape(B, nkv * n_rep, T, hd)


def causal_attention(q, k, v, scale):
    # q, k, v (B, nh, T, hd) -> (B, nh, T, hd)
    T = q.shape[2]
    scores = torch.matmul(q, k.transpose(2, 3)) * scale  # (B, nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key position > query position
    scores = scores.masked_fill(future, float("-inf"))
    probs = F.softmax(scores, dim=-1)
    return torch.matmul(probs, v)


def silu_mlp(x, gate_weight, up_weight, down_weight):
    # x (B, T, H); gate / up (I, H), down (H, I)
    return F.linear(F.silu(F.linear(x, gate_weight)) * F.linear(x, up_weight), down_weight)


# ----------------------------------------------------------------------------------------
# modules (named like HF's, so parameter names match the checkpoint and hooks attach alike)

class Linear(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = weight  # (out, in)

    def forward(self, x):
        return F.linear(x, self.weight)


class RMSNorm(nn.Module):
    def __init__(self, weight, eps):
        super().__init__()
        self.weight = weight  # (D,)
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class HookPoint(nn.Module):
    """An identity where a forward hook can read or replace an intermediate (TransformerLens's HookPoint)."""

    def forward(self, x):
        return x


class Attention(nn.Module):
    def __init__(self, cfg, take, prefix):
        super().__init__()
        self.hook_z = HookPoint()  # blocks.L.attn.hook_z: (B, T, nh, hd), the per-head output before o_proj
        H, nh, nkv, hd = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = nh, nkv, hd
        self.scale = hd ** -0.5
        self.q_proj = Linear(take(prefix + "q_proj.weight", (nh * hd, H)))
        self.k_proj = Linear(take(prefix + "k_proj.weight", (nkv * hd, H)))
        self.v_proj = Linear(take(prefix + "v_proj.weight", (nkv * hd, H)))
        self.o_proj = Linear(take(prefix + "o_proj.weight", (H, nh * hd)))
        if cfg.model_type == "qwen3":  # RMSNorm over head_dim, per head, on q and k before RoPE
            self.q_norm = RMSNorm(take(prefix + "q_norm.weight", (hd,)), cfg.rms_norm_eps)
            self.k_norm = RMSNorm(take(prefix + "k_norm.weight", (hd,)), cfg.rms_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x, cos, sin):
        # x (B, T, H) -> (B, T, H)
        B, T, _ = x.shape
        nh, nkv, hd = self.num_heads, self.num_kv_heads, self.head_dim
        q = self.q_proj(x).view(B, T, nh, hd)
        k = self.k_proj(x).view(B, T, nkv, hd)
        v = self.v_proj(x).view(B, T, nkv, hd)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = repeat_kv(k, nh // nkv), repeat_kv(v, nh // nkv)  # (B, nh, T, hd)
        y = causal_attention(q, k, v, self.scale)  # (B, nh, T, hd)
        y = self.hook_z(y.transpose(1, 2))  # (B, T, nh, hd)
        y = y.reshape(B, T, nh * hd)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg, take, prefix):
        super().__init__()
        H, I = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = Linear(take(prefix + "gate_proj.weight", (I, H)))
        self.up_proj = Linear(take(prefix + "up_proj.weight", (I, H)))
        self.down_proj = Linear(take(prefix + "down_proj.weight", (H, I)))

    def forward(self, x):
        return silu_mlp(x, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)


class DecoderLayer(nn.Module):
    """One block. Its output is "layer i" for steering; a forward hook on it sees (B, T, H)."""

    def __init__(self, cfg, take, prefix):
        super().__init__()
        H, eps = cfg.hidden_size, cfg.rms_norm_eps
        self.input_layernorm = RMSNorm(take(prefix + "input_layernorm.weight", (H,)), eps)
        self.self_attn = Attention(cfg, take, prefix + "self_attn.")
        self.post_attention_layernorm = RMSNorm(take(prefix + "post_attention_layernorm.weight", (H,)), eps)
        self.mlp = MLP(cfg, take, prefix + "mlp.")
        self.hook_resid_mid = HookPoint()  # blocks.L.hook_resid_mid: (B, T, H), after the attention residual add

    def forward(self, x, cos, sin):
        # x (B, T, H) -> (B, T, H)
        h = self.hook_resid_mid(x + self.self_attn(self.input_layernorm(x), cos, sin))
        return h + self.mlp(self.post_attention_layernorm(h))


class Embedding(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = weight  # (V, H)

    def forward(self, tokens):
        return F.embedding(tokens, self.weight)  # (B, T) -> (B, T, H)


class Backbone(nn.Module):
    """HF LlamaModel / Qwen3Model: embeddings, blocks, final norm."""

    def __init__(self, cfg, take):
        super().__init__()
        self.embed_tokens = Embedding(take("model.embed_tokens.weight", (cfg.vocab_size, cfg.hidden_size)))
        self.layers = nn.ModuleList(DecoderLayer(cfg, take, f"model.layers.{i}.") for i in range(cfg.num_layers))
        self.norm = RMSNorm(take("model.norm.weight", (cfg.hidden_size,)), cfg.rms_norm_eps)

    def forward(self, tokens, cos, sin):
        # tokens (B, T) -> final normed hidden (B, T, H), and the L+1 hidden states in HF's
        # output_hidden_states convention: [embeddings, block 0 out, ..., block L-2 out, norm(block L-1 out)].
        h = self.embed_tokens(tokens)
        hidden_states = []
        for layer in self.layers:
            hidden_states.append(h)
            h = layer(h, cos, sin)  # forward hooks (steering) run inside this call
        h = self.norm(h)
        hidden_states.append(h)
        return h, hidden_states


class CausalLM(nn.Module):
    """HF LlamaForCausalLM / Qwen3ForCausalLM."""

    def __init__(self, cfg, take, lm_head_weight):
        super().__init__()
        self.config = cfg
        self.model = Backbone(cfg, take)
        self.lm_head = Linear(lm_head_weight if lm_head_weight is not None else self.model.embed_tokens.weight)
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)  # (hd/2,) float32

    @property
    def dtype(self):
        return self.lm_head.weight.dtype

    def forward(self, tokens):
        # tokens (B, T) int64 -> logits (B, T, V), hidden_states list of L+1 tensors (B, T, H)
        cos, sin = rope_cos_sin(self.inv_freq, tokens.shape[1], self.dtype)
        h, hidden_states = self.model(tokens, cos, sin)
        return self.lm_head(h), hidden_states


def load_model(model_dir, dtype=torch.float32):
    """Load config.json and the weights of a HF model directory; weights widened to `dtype`."""
    cfg = load_config(model_dir)
    weights, stored_dtypes = read_model_weights(model_dir)

    def take(name, shape):
        if name not in weights:
            raise ModelError(f"{model_dir}: weight {name} is missing")
        w = weights.pop(name)
        if tuple(w.shape) != tuple(shape):
            raise ModelError(f"{model_dir}: weight {name} has shape {list(w.shape)}; expected {list(shape)}")
        return nn.Parameter(w.to(dtype), requires_grad=False)

    lm_head = None
    if not cfg.tie_word_embeddings:
        lm_head = take("lm_head.weight", (cfg.vocab_size, cfg.hidden_size))
    model = CausalLM(cfg, take, lm_head)

    if cfg.tie_word_embeddings and "lm_head.weight" in weights:
        extra = weights.pop("lm_head.weight").to(dtype)
        if not torch.equal(extra, model.model.embed_tokens.weight):
            raise ModelError(f"{model_dir}: tie_word_embeddings is true but lm_head.weight differs from embed_tokens")
    unused = sorted(n for n in weights if not n.endswith("rotary_emb.inv_freq"))
    if unused:
        raise ModelError(f"{model_dir}: unexpected weight {unused[0]} ({len(unused)} unused in all)")
    model.stored_dtypes = sorted(set(stored_dtypes.values()))  # e.g. ["BF16"], for reports
    return model.eval()


# ----------------------------------------------------------------------------------------
# steering: a forward hook on a decoder block, the way researchers steer HF models

POSITION_MODES = ("all", "prompt", "response", "last_prompt", "first_k", "tokens")
STEERING_OPS = ("add", "add_normalized", "ablate", "cap", "set")
# Hook points by their short names: the module a forward hook goes on, as TransformerLens names it.
STEERING_HOOKS = ("resid_post", "resid_mid", "attn_z")


def hook_module(layer, hook):
    """The module of decoder block `layer` whose output is the hook point: the block itself
    (blocks.L.hook_resid_post), its hook_resid_mid, or its attention's hook_z."""
    if hook == "resid_post":
        return layer
    if hook == "resid_mid":
        return layer.hook_resid_mid
    if hook == "attn_z":
        return layer.self_attn.hook_z
    raise ValueError(f"steering hook {hook!r}; expected one of {STEERING_HOOKS}")


def steering_mask(mode, seq_len, prompt_len, k=None, tokens=None):
    """(T,) bool: which positions a steering entry applies to, for a sequence run from position 0.
    all: every position; prompt: positions < prompt_len; response: positions >= prompt_len - 1
    (the last prompt position, whose logits pick the first generated token, and every
    generated token); last_prompt: position prompt_len - 1 only; first_k: the first k positions
    of response; tokens: the listed positions."""
    positions = torch.arange(seq_len)
    if mode == "all":
        return torch.ones(seq_len, dtype=torch.bool)
    if mode == "prompt":
        return positions < prompt_len
    if mode == "response":
        return positions >= prompt_len - 1
    if mode == "last_prompt":
        return positions == prompt_len - 1
    if mode == "first_k":
        return (positions >= prompt_len - 1) & (positions < prompt_len - 1 + k)
    if mode == "tokens":
        return torch.isin(positions, torch.tensor(tokens, dtype=positions.dtype))
    raise ValueError(f"positions mode {mode!r}; expected one of {POSITION_MODES}")


def steering_op(op, hidden, vector, multiplier, lo=None, hi=None, value=None):
    """The steered rows of hidden (..., H) under one operation, written from its definition:
    add h + m v; add_normalized (h + m v) |h| / |h + m v|; with u = v / |v| and p = h.u:
    ablate h - p u; cap h + (clamp(p, lo, hi) - p) u; set h + (value - p) u.
    The projection and norm operations run in float64 and round once to the working dtype."""
    delta = torch.as_tensor(multiplier, dtype=vector.dtype) * vector  # (H,), rounded to the working dtype
    if op == "add":
        return hidden + delta
    h = hidden.double()
    if op == "add_normalized":
        added = (hidden + delta).double()
        return (added * (h.norm(dim=-1, keepdim=True) / added.norm(dim=-1, keepdim=True))).to(hidden.dtype)
    u = vector.double() / vector.double().norm()
    p = (h * u).sum(dim=-1, keepdim=True)
    if op == "ablate":
        target = torch.zeros_like(p)
    elif op == "cap":
        target = p.clamp(min=lo, max=hi)
    elif op == "set":
        target = torch.full_like(p, value)
    else:
        raise ValueError(f"steering op {op!r}; expected one of {STEERING_OPS}")
    return (h + (target - p) * u).to(hidden.dtype)


def add_steering_hook(layer, vector, multiplier, mask, op="add", lo=None, hi=None, value=None, hook="resid_post", head=None):
    """Register one steering operation (steering_op; default h <- h + multiplier*vector) at the
    masked positions of a hook point of `layer` (default its output, after the MLP residual add).
    vector (H,), or at attn_z (nh*hd,) over every head or (hd,) for one `head`; mask (T,) bool.
    Returns the hook handle (.remove()). Several hooks on one point apply in registration
    order, each on the output of the one before: ((h + m1 v1) + m2 v2)."""

    def steer(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output  # HF layers may return a tuple
        if hook == "attn_z":  # (B, T, nh, hd): the op sees one head's slice, or the heads flattened
            B, T, nh, hd = hidden.shape
            if head is not None:
                part = hidden[:, :, head, :]  # (B, T, hd)
                steered = hidden.clone()
                steered[:, :, head, :] = torch.where(mask[:, None], steering_op(op, part, vector, multiplier, lo, hi, value), part)
                return steered
            flat = hidden.reshape(B, T, nh * hd)
            return torch.where(mask[:, None], steering_op(op, flat, vector, multiplier, lo, hi, value), flat).reshape(B, T, nh, hd)
        steered = torch.where(mask[:, None], steering_op(op, hidden, vector, multiplier, lo, hi, value), hidden)  # (B, T, H)
        return (steered,) + tuple(output[1:]) if isinstance(output, tuple) else steered

    return hook_module(layer, hook).register_forward_hook(steer)
