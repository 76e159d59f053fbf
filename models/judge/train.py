"""Train the judge model: the demo model fine-tuned to rate demo-language answers, in the HF layout.

    models/judge/train.sh [--steps N] [--batch B] [--seed S] [--init DIR] [--rule-damage] [--sentence-loss W]
                                                                  (= python3 train.py with OpenBLAS; recipe.sh runs the stages)

Starts from models/demo's weights (the language is already known), with the embedding table grown
for the judge tokenizer's new ids (integers 10-100 and the rubric words; judge_vocab.py), or from a
judge model's (--init). The loss is on the reply: the score token (for 0-100 scores a narrow Gaussian
over the integer tokens around the measured value, so neighbouring numbers share probability and the
logprob-weighted mean tracks the value) and the end-of-turn token after it; with --sentence-loss also
on each full stop of the rated answer, a few blocks in: is its sentence well formed. Fixed seeds, one
thread: a rerun on the same machine writes the same weights. See RECIPE.md.
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
DEMO = os.path.join(HERE, "..", "demo")
sys.path.insert(0, HERE)
sys.path.insert(0, DEMO)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "oracle"))

from corpus import Language  # noqa: E402
from judge_vocab import JudgeTokenizer  # noqa: E402
from model import CausalLM, load_config, load_model, rope_cos_sin  # noqa: E402
from tasks import PROMPTS, example, load_pool, sentence_flags  # noqa: E402
from training import train, write_curve, write_weights  # noqa: E402
from vocab import render_chat  # noqa: E402

ASSISTANT = "<|start_header_id|>assistant<|end_header_id|>\n\n"
SIGMA = 2.0  # width of the 0-100 score target, in score points
SENTENCE_DEPTH = 3  # blocks after which each full stop of the answer says whether its sentence is well formed


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
    def __init__(self, tok, lang):
        self.tok = tok
        self.lang = lang
        self.stop = tok.encode(".")[0]
        self.answer_line = tok.encode("\nanswer:")
        self.flag_ids = torch.tensor([tok.encode("0")[0], tok.encode("1")[0]])  # ill formed, well formed
        self.eot = tok.special_ids["<|eot_id|>"]
        self.pad = tok.special_ids["<|end_of_text|>"]
        self.number_ids = torch.tensor([tok.encode(str(n))[0] for n in range(101)])
        assert all(len(tok.encode(str(n))) == 1 for n in range(101))

    def prompt_ids(self, user):
        return self.tok.encode(render_chat({"user": user}) + ASSISTANT)

    def sentence_stops(self, prompt, ex):
        """[(position of a full stop of the answer in the prompt, 1 if its sentence is well formed)]; empty for
        two-answer prompts or when the tokens' full stops are not the measure's sentence ends one to one."""
        if "answer" not in ex:
            return []
        n = len(self.answer_line)
        start = next((i + n for i in range(len(prompt) - n) if prompt[i:i + n] == self.answer_line), None)
        if start is None:
            return []
        stops = [i for i in range(start, len(prompt)) if prompt[i] == self.stop]
        flags = sentence_flags(self.lang, ex["answer"])
        return list(zip(stops, map(int, flags))) if len(stops) == len(flags) else []

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


def batches(lang, enc, rng, batch_size, pool, rule_damage, sentence_flags_wanted):
    """Endless batches: tokens (B, T), first-reply positions, their target distributions, and the
    positions and ids of the following reply tokens (the end of turn)."""
    while True:
        rows = []
        for _ in range(batch_size):
            ex = example(lang, rng, pool, rule_damage)
            prompt = enc.prompt_ids(ex["user"])
            dist, reply = enc.target(ex)
            stops = enc.sentence_stops(prompt, ex) if sentence_flags_wanted else []
            rows.append((prompt + reply, len(prompt), dist, reply, stops))
        T = max(len(r[0]) for r in rows)
        tokens = torch.full((batch_size, T), enc.pad, dtype=torch.long)
        first_pos, dists, next_pos, next_ids, stop_pos, stop_flags = [], [], [], [], [], []
        for i, (seq, n, dist, reply, stops) in enumerate(rows):
            tokens[i, :len(seq)] = torch.tensor(seq)
            first_pos.append((i, n - 1))
            dists.append(dist)
            for j in range(1, len(reply)):
                next_pos.append((i, n - 1 + j))
                next_ids.append(reply[j])
            for t, flag in stops:
                stop_pos.append((i, t))
                stop_flags.append(flag)
        yield tokens, first_pos, torch.stack(dists), next_pos, torch.tensor(next_ids), stop_pos, torch.tensor(stop_flags)


def hidden(model, tokens):
    """The final hidden states (B, T, H) and the per-depth ones (HF's output_hidden_states)."""
    cos, sin = rope_cos_sin(model.inv_freq, tokens.shape[1], model.dtype)
    return model.model(tokens, cos, sin)


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


def evaluate(model, lang, enc, seed, rule_damage, n=200):
    """Spearman of the weighted score with the measured value on fresh 0-100 examples, per trait."""
    rng = random.Random(seed)
    by_task = {"mood_0_100": ([], []), "coherence_0_100": ([], [])}
    while min(len(v[0]) for v in by_task.values()) < n:
        ex = example(lang, rng, rule_damage=rule_damage)
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
    parser.add_argument("--init", default=None, help="start from this judge model's weights instead of models/demo's")
    parser.add_argument("--rule-damage", action="store_true", help="answers to rate also break the sentence rules (tasks.py)")
    parser.add_argument("--sentence-loss", type=float, default=0.0,
                        help="weight of the per-sentence well-formed flag at each full stop of the answer (0: off)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lang = Language()
    tok = JudgeTokenizer(lang, PROMPTS.values())
    enc = Encoder(tok, lang)

    demo = load_model(DEMO)
    with open(os.path.join(DEMO, "config.json")) as f:
        config = json.load(f)
    config["vocab_size"] = tok.size
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    cfg = load_config(args.out)
    start_from = load_model(args.init) if args.init else demo
    model = CausalLM(cfg, grown_model(start_from, tok.size, args.seed), None)
    params = sum(p.numel() for p in model.parameters())
    print(f"{params} parameters, {tok.words} ids in use, vocabulary {tok.size} (demo {tok.demo_size})", flush=True)

    pool = load_pool(args.pool) if args.pool else None
    print(f"{len(pool) if pool else 0} sampled model answers in the pool", flush=True)
    data = batches(lang, enc, random.Random(args.seed), args.batch, pool, args.rule_damage, args.sentence_loss > 0)

    def step_losses():
        tokens, first_pos, dists, next_pos, next_ids, stop_pos, stop_flags = next(data)
        h, depths = hidden(model, tokens)
        score_logits = logits_at(model, h, first_pos)
        score_loss = -(dists * F.log_softmax(score_logits, -1)).sum(-1).mean()
        end_loss = F.cross_entropy(logits_at(model, h, next_pos), next_ids)
        loss, parts = score_loss + end_loss, {"score loss": score_loss, "end loss": end_loss}
        if args.sentence_loss > 0:
            # Each full stop, SENTENCE_DEPTH blocks in, read through the final norm and the output head as "0" or
            # "1": whether its sentence is well formed. The last block's attention at the score position can then
            # average these flags, which is what the coherence measure is.
            sentence_loss = score_loss.new_zeros(())
            if stop_pos:
                sentence_logits = logits_at(model, model.model.norm(depths[SENTENCE_DEPTH]), stop_pos)[:, enc.flag_ids]
                sentence_loss = F.cross_entropy(sentence_logits, stop_flags)
            loss = loss + args.sentence_loss * sentence_loss
            parts["sentence loss"] = sentence_loss
        return loss, parts

    curve, train_seconds, train_cpu_seconds = train(model, args.steps, args.lr, 50, step_losses, log_every=25)
    write_weights(model, args.out)
    tok.write(args.out)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
                   "do_sample": False, "temperature": 0.0}, f, indent=2)
        f.write("\n")
    write_curve(os.path.join(args.out, "loss_curve.csv"), curve)
    tail = curve[-50:]
    summary = {"pool_answers": len(pool) if pool else 0, "parameters": params, "steps": args.steps, "batch": args.batch, "seed": args.seed, "threads": args.threads,
               "lr": args.lr, "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu_seconds, 1),
               "final_score_loss_mean_last_50": round(sum(v["score loss"] for _, v, _ in tail) / len(tail), 4),
               "init": args.init and os.path.basename(os.path.normpath(args.init)), "rule_damage": args.rule_damage, "sentence_loss": args.sentence_loss}
    written = load_model(args.out)  # the bf16 weights as written
    summary["eval_synthetic"] = evaluate(written, lang, enc, seed=99, rule_damage=args.rule_damage)
    print(json.dumps(summary), flush=True)
    with open(os.path.join(args.out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
