"""The optimisation both recipes share (models/demo/train.py, models/judge/train.py): AdamW (β 0.9/0.95, weight
decay 0.05 on matrices only), a linear warm-up then cosine decay to 10 % of the peak learning rate, gradients
clipped to norm 1, the losses of every step kept as the loss curve, and the weights written in bf16."""

import csv
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "oracle"))

from safetensors_io import write_safetensors  # noqa: E402


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(model, steps, peak_lr, warmup, step_losses, log_every):
    """Runs `steps` optimiser steps. step_losses() computes one batch's losses: (loss to minimise,
    {name: loss tensor} to record). Returns the curve [(step, {name: value}, seconds)], wall and CPU seconds."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=peak_lr, betas=(0.9, 0.95), eps=1e-8)
    curve = []
    start, cpu_start = time.time(), time.process_time()
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, peak_lr, warmup)
        loss, parts = step_losses()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        values = {name: t.item() for name, t in parts.items()}
        curve.append((step, values, time.time() - start))
        if step % log_every == 0 or step == steps - 1:
            shown = "  ".join(f"{name} {v:.4f}" for name, v in values.items())
            print(f"step {step:5d}  {shown}  {time.time() - start:7.1f}s", flush=True)
    model.eval()
    return curve, time.time() - start, time.process_time() - cpu_start


def write_weights(model, out):
    """model.safetensors in bf16 (the tied output head and the RoPE table left out)."""
    weights = {n: p.detach() for n, p in model.state_dict().items() if n != "inv_freq" and n != "lm_head.weight"}
    write_safetensors(os.path.join(out, "model.safetensors"), weights, dtype="BF16", metadata={"format": "pt"})


def write_curve(path, curve):
    """loss_curve.csv: step, one column per recorded loss (spaces as underscores), seconds."""
    names = list(curve[0][1]) if curve else []
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step"] + [n.replace(" ", "_") for n in names] + ["seconds"])
        for step, values, seconds in curve:
            w.writerow([step] + [f"{values[n]:.5f}" for n in names] + [f"{seconds:.1f}"])
