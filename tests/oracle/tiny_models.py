"""Tiny random Llama and Qwen3 model directories (config.json + bf16 safetensors) for tests."""

import json
import os

import numpy as np

from safetensors_io import write_safetensors

TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 300,
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,  # GQA, 2 query heads per kv head
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    # original context 64 puts head_dim 16's wavelengths in all three llama3 bands
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}

TINY_QWEN3 = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "vocab_size": 300,
    "hidden_size": 48,
    "intermediate_size": 80,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 24,  # != hidden_size / heads, as in real Qwen3
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "tie_word_embeddings": True,  # no lm_head.weight in the files
    "use_sliding_window": False,
    "attention_bias": False,
    "torch_dtype": "bfloat16",
}


def random_weights(cfg, seed):
    """{name: float32 array} for a config, at scales that keep every op far from trivial."""
    rng = np.random.default_rng(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh

    def linear(out_dim, in_dim):
        return rng.normal(0.0, 1.0 / np.sqrt(in_dim), (out_dim, in_dim))

    def norm(dim):
        return 1.0 + 0.2 * rng.normal(size=dim)

    w = {"model.embed_tokens.weight": rng.normal(0.0, 1.0, (V, H)), "model.norm.weight": norm(H)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "self_attn.q_proj.weight"] = 2.0 * linear(nh * hd, H)  # sharper attention patterns
        w[p + "self_attn.k_proj.weight"] = 2.0 * linear(nkv * hd, H)
        w[p + "self_attn.v_proj.weight"] = linear(nkv * hd, H)
        w[p + "self_attn.o_proj.weight"] = linear(H, nh * hd)
        if cfg["model_type"] == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm(hd)
            w[p + "self_attn.k_norm.weight"] = norm(hd)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        w[p + "mlp.gate_proj.weight"] = linear(I, H)
        w[p + "mlp.up_proj.weight"] = linear(I, H)
        w[p + "mlp.down_proj.weight"] = linear(H, I)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = linear(V, H)
    return {k: v.astype(np.float32) for k, v in w.items()}


def write_model_dir(model_dir, cfg, seed=0, shards=1):
    """Write config.json and bf16 weights (one file, or `shards` files plus the index)."""
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    weights = random_weights(cfg, seed)
    if shards == 1:
        write_safetensors(os.path.join(model_dir, "model.safetensors"), weights, dtype="BF16",
                          metadata={"format": "pt"})
        return
    names = list(weights)
    weight_map = {}
    for s in range(shards):
        file_name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[s::shards]}
        write_safetensors(os.path.join(model_dir, file_name), part, dtype="BF16", metadata={"format": "pt"})
        weight_map.update({n: file_name for n in part})
    with open(os.path.join(model_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)
