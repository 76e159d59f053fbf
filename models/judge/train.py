"""Train the judge model: the demo model fine-tuned to rate demo-language answers, in the HF layout.

    models/judge/train.sh [--steps N] [--batch B] [--seed S]     (= python3 train.py with OpenBLAS)

Starts from models/demo's weights (the language is already known), with the embedding table grown
for the judge tokenizer's new ids (integers 10-100 and the rubric words; judge_vocab.py). The loss
is on the reply only: the score token (for 0-100 scores a narrow Gaussian over the integer tokens
around the measured value, so neighbouring numbers share probability and the logprob-weighted
mean tracks the value) and the end-of-turn token after it. Fixed seeds, one thread: a rerun on
the same machine writes the same weights. See RECIPE.md.
"""

import argparse
import importlib.util
import csv
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.join(HERE, "..", "demo")
sys.path.insert(0, HERE)
sys.path.insert(0, DEMO)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "oracle"))

from corpus import Language  # noqa: E402
from judge_vocab import JudgeTokenizer  # noqa: E402
from model import CausalLM, load_config, load_model, rope_cos_sin  # noqa: E402
from safetensors_io import write_safetensors  # noqa: E402
from tasks import PROMPTS, example, load_pool  # noqa: E402
from vocab import render_chat  # noqa: E402

# The demo recipe's learning-rate schedule (warm-up, then cosine to 10 %); loaded by path because
# both recipes' scripts are named train.py.
_spec = importlib.util.spec_from_file_location("demo_train", os.path.join(DEMO, "train.py"))
_demo_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_demo_train)
lr_at = _demo_train.lr_at

ASSISTANT = "<|start_header_id|>assistant<|end_header_id|>\n\n"
SIGMA = 2.0  # width of the 0-100 score target, in score points


def grown_model(demo, vocab_size, seed):
    """The demo model's parameters, trainable, with new embedding rows N(0, 0.02)."""
    gen = torch.Generator().manual_seed(seed)
    state = {n: p.detach().clone() for n, p in demo.state_dict().items()}

    def take(name, shape):
        w = state[name]
        if name == "model.embed_tokens.weight" and w.shape[0] < shape[0]:
            extra = torch.randn((shape[0] - w.shape[0], shape[1]), generator=gen) * 0.02
            w = torch.cat([w, extra])
        return nn.Parameter(w.clone())

    return take


class Encoder:
    def __init__(self, tok):
        self.tok = tok
        self.eot = tok.special_ids["<|eot_id|>"]
        self.pad = tok.special_ids["<|end_of_text|>"]
        self.number_ids = torch.tensor([tok.encode(str(n))[0] for n in range(101)])
        assert all(len(tok.encode(str(n))) == 1 for n in range(101))

    def prompt_ids(self, user):
        return self.tok.encode(render_chat({"user": user}) + ASSISTANT)

    def target(self, ex):
        """(first reply token's target distribution over the vocabulary, reply token ids)."""
        reply = self.tok.encode(ex["assistant"])
        dist = torch.zeros(self.tok.size)
        if ex["task"].endswith("_0_100"):
            k = torch.arange(101, dtype=torch.float32)
            w = torch.exp(-0.5 * ((k - ex["target"]) / SIGMA) ** 2)
            dist[self.number_ids] = w / w.sum()
        else:
            dist[reply[0]] = 1.0
        return dist, reply + [self.eot]


def batches(lang, enc, rng, batch_size, pool):
    """Endless batches: tokens (B, T), first-reply positions, their target distributions, and the
    positions and ids of the following reply tokens (the end of turn)."""
    while True:
        rows = []
        for _ in range(batch_size):
            ex = example(lang, rng, pool)
            prompt = enc.prompt_ids(ex["user"])
            dist, reply = enc.target(ex)
            rows.append((prompt + reply, len(prompt), dist, reply))
        T = max(len(r[0]) for r in rows)
        tokens = torch.full((batch_size, T), enc.pad, dtype=torch.long)
        first_pos, dists, next_pos, next_ids = [], [], [], []
        for i, (seq, n, dist, reply) in enumerate(rows):
            tokens[i, :len(seq)] = torch.tensor(seq)
            first_pos.append((i, n - 1))
            dists.append(dist)
            for j in range(1, len(reply)):
                next_pos.append((i, n - 1 + j))
                next_ids.append(reply[j])
        yield tokens, first_pos, torch.stack(dists), next_pos, torch.tensor(next_ids)


def hidden(model, tokens):
    cos, sin = rope_cos_sin(model.inv_freq, tokens.shape[1], model.dtype)
    h, _ = model.model(tokens, cos, sin)
    return h


def logits_at(model, h, positions):
    rows = torch.tensor([i for i, _ in positions])
    cols = torch.tensor([t for _, t in positions])
    return model.lm_head(h[rows, cols])


def spearman(xs, ys):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    if len(xs) < 2:
        return float("nan")
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    vy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (vx * vy) if vx and vy else float("nan")


@torch.no_grad()
def weighted_scores(model, enc, users):
    """The logprob-weighted 0-100 score of each prompt (top 20 tokens, integers 0-100 only)."""
    out = []
    for user in users:
        ids = enc.prompt_ids(user)
        logits, _ = model(torch.tensor([ids]))
        probs = F.softmax(logits[0, -1].float(), -1)
        top = torch.topk(probs, 20)
        number_of = {int(t): n for n, t in enumerate(enc.number_ids.tolist())}
        total = weighted = 0.0
        for p, t in zip(top.values.tolist(), top.indices.tolist()):
            if t in number_of:
                total += p
                weighted += p * number_of[t]
        out.append(weighted / total if total >= 0.25 else None)
    return out


def evaluate(model, lang, enc, seed, n=200):
    """Spearman of the weighted score with the measured value on fresh 0-100 examples, per trait."""
    rng = random.Random(seed)
    by_task = {"mood_0_100": ([], []), "coherence_0_100": ([], [])}
    while min(len(v[0]) for v in by_task.values()) < n:
        ex = example(lang, rng)
        if ex["task"] in by_task and len(by_task[ex["task"]][0]) < n:
            by_task[ex["task"]][0].append(ex["user"])
            by_task[ex["task"]][1].append(ex["target"])
    result = {}
    for task, (users, targets) in by_task.items():
        scores = weighted_scores(model, enc, users)
        pairs = [(s, t) for s, t in zip(scores, targets) if s is not None]
        result[task] = {"spearman": round(spearman([s for s, _ in pairs], [t for _, t in pairs]), 4),
                        "scored": len(pairs), "of": len(users)}
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=4321)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pool", default=None, help="JSONL of sampled demo-model answers (make_pool.sh)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lang = Language()
    tok = JudgeTokenizer(lang, PROMPTS.values())
    enc = Encoder(tok)

    demo = load_model(DEMO)
    with open(os.path.join(DEMO, "config.json")) as f:
        config = json.load(f)
    config["vocab_size"] = tok.size
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    cfg = load_config(args.out)
    model = CausalLM(cfg, grown_model(demo, tok.size, args.seed), None)
    params = sum(p.numel() for p in model.parameters())
    print(f"{params} parameters, {tok.words} ids in use, vocabulary {tok.size} (demo {tok.demo_size})", flush=True)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    pool = load_pool(args.pool) if args.pool else None
    print(f"{len(pool) if pool else 0} sampled model answers in the pool", flush=True)
    data = batches(lang, enc, random.Random(args.seed), args.batch, pool)

    curve = []
    start, cpu_start = time.time(), time.process_time()
    model.train()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, 50)
        tokens, first_pos, dists, next_pos, next_ids = next(data)
        h = hidden(model, tokens)
        score_logits = logits_at(model, h, first_pos)
        score_loss = -(dists * F.log_softmax(score_logits, -1)).sum(-1).mean()
        end_loss = F.cross_entropy(logits_at(model, h, next_pos), next_ids)
        loss = score_loss + end_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append((step, score_loss.item(), end_loss.item(), time.time() - start))
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  score loss {score_loss.item():.4f}  end loss {end_loss.item():.4f}  "
                  f"{time.time() - start:7.1f}s", flush=True)
    train_seconds, train_cpu_seconds = time.time() - start, time.process_time() - cpu_start

    model.eval()
    weights = {n: p.detach() for n, p in model.state_dict().items() if n != "inv_freq" and n != "lm_head.weight"}
    write_safetensors(os.path.join(args.out, "model.safetensors"), weights, dtype="BF16", metadata={"format": "pt"})
    tok.write(args.out)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
                   "do_sample": False, "temperature": 0.0}, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "loss_curve.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "score_loss", "end_loss", "seconds"])
        for step, s, e, seconds in curve:
            w.writerow([step, f"{s:.5f}", f"{e:.5f}", f"{seconds:.1f}"])
    tail = curve[-50:]
    summary = {"pool_answers": len(pool) if pool else 0, "parameters": params, "steps": args.steps, "batch": args.batch, "seed": args.seed, "threads": args.threads,
               "lr": args.lr, "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu_seconds, 1),
               "final_score_loss_mean_last_50": round(sum(c[1] for c in tail) / len(tail), 4)}
    written = load_model(args.out)  # the bf16 weights as written
    summary["eval_synthetic"] = evaluate(written, lang, enc, seed=99)
    print(json.dumps(summary), flush=True)
    with open(os.path.join(args.out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
