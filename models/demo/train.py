"""Train the demo model: a small Llama on the demo language, written in the Hugging Face layout.

    /usr/bin/python3 models/demo/train.py [--out models/demo] [--steps N] [--seed S]

Debian's python3-torch on the CPU, two threads, fixed seeds: a rerun on the same machine with the
same thread count writes the same weights. The model is the PyTorch oracle's own LlamaForCausalLM
(tests/oracle/model.py) with trainable parameters, so the trained file is exactly what the oracle
and the C# engine read. See RECIPE.md.
"""

import argparse
import json
import math
import os
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "oracle"))

from corpus import Language, measure  # noqa: E402
from model import CausalLM, load_config  # noqa: E402
from training import train, write_curve, write_weights  # noqa: E402
from vocab import Tokenizer, render_chat  # noqa: E402

SHAPE = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
}


def model_config(vocab_size):
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        **SHAPE,
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": True,
        "bos_token_id": None,  # filled in below
        "eos_token_id": None,
        "torch_dtype": "bfloat16",
    }


def init_model(cfg, seed):
    """The oracle model with fresh parameters: N(0, 0.02), output projections scaled by 1/sqrt(2L), norms 1."""
    gen = torch.Generator().manual_seed(seed)
    out_std = 0.02 / math.sqrt(2 * cfg.num_layers)

    def take(name, shape):
        if name.endswith("norm.weight"):
            w = torch.ones(shape)
        else:
            std = out_std if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
            w = torch.randn(shape, generator=gen) * std
        return nn.Parameter(w)

    return CausalLM(cfg, take, None)


def batches(lang, tok, rng, batch_size):
    """Endless (tokens, loss mask) batches of fresh examples, right-padded to the longest."""
    pad = tok.special_ids["<|end_of_text|>"]
    while True:
        seqs = [tok.encode(render_chat(lang.example(rng))) for _ in range(batch_size)]
        T = max(len(s) for s in seqs)
        tokens = torch.full((batch_size, T), pad, dtype=torch.long)
        mask = torch.zeros((batch_size, T), dtype=torch.bool)
        for i, s in enumerate(seqs):
            tokens[i, :len(s)] = torch.tensor(s)
            mask[i, 1:len(s)] = True  # targets: every token after BOS
        yield tokens, mask


@torch.no_grad()
def sample(model, tok, prompt, max_new, temperature, gen):
    ids = tok.encode(prompt)
    eot = tok.special_ids["<|eot_id|>"]
    out = []
    for _ in range(max_new):
        logits, _ = model(torch.tensor([ids + out]))
        last = logits[0, -1]
        nxt = int(last.argmax()) if temperature == 0 else int(torch.multinomial(F.softmax(last / temperature, -1), 1, generator=gen))
        if nxt == eot:
            break
        out.append(nxt)
    return tok.decode(out)


def evaluate(model, lang, tok, seed, n=40):
    """Sampled answers (temperature 1) to fresh questions: mean coherence and trait rates, and a few texts."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        user, _ = lang.question(rng)
        prompt = render_chat({"user": user}) + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        rows.append((user, sample(model, tok, prompt, 60, 1.0, gen)))
    ms = [measure(lang, text) for _, text in rows]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    return {
        "coherence": mean([m["coherence"] for m in ms]),
        "mood": mean([m["mood"] for m in ms if m["mood"] is not None]),
        "formality": mean([m["formality"] for m in ms if m["formality"] is not None]),
    }, rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lang = Language()
    tok = Tokenizer(lang)
    vocab_size = tok.size

    os.makedirs(args.out, exist_ok=True)
    config = model_config(vocab_size)
    config["bos_token_id"] = tok.special_ids["<|begin_of_text|>"]
    config["eos_token_id"] = [tok.special_ids["<|eot_id|>"], tok.special_ids["<|end_of_text|>"]]
    config_path = os.path.join(args.out, "config.json")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    cfg = load_config(args.out)
    model = init_model(cfg, args.seed)
    params = sum(p.numel() for p in model.parameters())
    print(f"{params} parameters, vocab {tok.words} words and specials, {vocab_size} ids", flush=True)

    data = batches(lang, tok, random.Random(args.seed), args.batch)

    def step_losses():
        tokens, mask = next(data)
        logits, _ = model(tokens[:, :-1])
        loss = F.cross_entropy(logits[mask[:, 1:]], tokens[:, 1:][mask[:, 1:]])
        return loss, {"loss": loss}

    curve, train_seconds, train_cpu_seconds = train(model, args.steps, args.lr, 100, step_losses, log_every=50)
    write_weights(model, args.out)
    tok.write(args.out)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
                   "do_sample": True, "temperature": 1.0, "top_p": 1.0}, f, indent=2)
        f.write("\n")
    write_curve(os.path.join(args.out, "loss_curve.csv"), curve)
    tail = curve[-100:]
    summary = {"parameters": params, "steps": args.steps, "batch": args.batch, "seed": args.seed, "threads": args.threads,
               "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu_seconds, 1),
               "final_loss_mean_last_100": round(sum(v["loss"] for _, v, _ in tail) / len(tail), 4)}

    # Measured on the bf16 weights as written, the way every reader will see them.
    from model import load_model
    written = load_model(args.out)
    stats, rows = evaluate(written, lang, tok, seed=7)
    summary.update({f"eval_{k}": round(v, 4) for k, v in stats.items()})
    print(json.dumps(summary), flush=True)
    with open(os.path.join(args.out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    for user, text in rows[:8]:
        print(f"Q: {user}\nA: {text}\n")


if __name__ == "__main__":
    main()
