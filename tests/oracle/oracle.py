"""PyTorch reference outputs for SteerEngine's tests.

  oracle.py forward --model DIR --request REQ.json --out OUT.safetensors [--dtype float32|float64]
  oracle.py bipo-grad --model DIR --request BIPO.json --out OUT.safetensors [--dtype float32|float64] [--fd K]
  oracle.py bipo-step --model DIR --request BIPO.json [--repeat N]
  oracle.py init-check --model DIR

REQ.json:
  {"sequences": [[token ids], ...],
   "prompt_lens": [n, ...],            optional; default: each sequence's full length
   "hidden_states": true|false,        optional; default false
   "steering": [{"row": 0, "layer": 2, "multiplier": 4.0,
                 "positions": "all"|"prompt"|"response", "vector": [H floats]}, ...]}   optional
     each entry may add "op" (add, add_normalized, ablate, cap, set) with "lo"/"hi"/"value",
     "k" (first_k), "tokens" (tokens), and "hook": resid_post (default) | resid_mid | attn_z with
     "head" (attn_z: the vector is nh*hd wide, or hd wide for one head)

Each sequence runs alone (batch of 1, no padding, positions 0..T-1), so the outputs are the
ground truth for any batch the engine puts it in. OUT.safetensors holds float32 tensors
"logits.{i}" (T_i, V) and, with hidden_states, "hidden.{i}" (L+1, T_i, H).
"""

import argparse
import json
import math
import os
import sys

import torch

import torch.nn.functional as F

from model import POSITION_MODES, STEERING_HOOKS, STEERING_OPS, ModelError, add_steering_hook, load_model, steering_mask
from safetensors_io import SafetensorsError, write_safetensors


class RequestError(Exception):
    """A request file that does not say what the oracle needs."""


# ----------------------------------------------------------------------------------------
# request

def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


def read_request_object(path, fields):
    """The JSON object in PATH, with no field outside FIELDS; RequestError names what is wrong."""
    try:
        with open(path) as f:
            req = json.load(f)
    except OSError as e:
        raise RequestError(f"{path}: cannot read ({e.strerror})")
    except json.JSONDecodeError as e:
        raise RequestError(f"{path}: not valid JSON ({e})")
    if not isinstance(req, dict):
        raise RequestError(f"{path}: expected a JSON object")
    unknown = sorted(set(req) - fields)
    if unknown:
        raise RequestError(f"{path}: unknown field {unknown[0]!r}")
    return req


def parse_request(path, cfg):
    """Read and check REQ.json against the model's config. Returns a dict with sequences,
    prompt_lens, hidden_states and steering (each entry's vector still a list)."""
    req = read_request_object(path, {"sequences", "prompt_lens", "hidden_states", "steering"})

    sequences = req.get("sequences")
    if not isinstance(sequences, list) or not sequences:
        raise RequestError(f"{path}: sequences must be a non-empty list of token-id lists")
    for i, seq in enumerate(sequences):
        if not isinstance(seq, list) or not seq:
            raise RequestError(f"{path}: sequences[{i}] must be a non-empty list of token ids")
        for j, tok in enumerate(seq):
            if not _is_int(tok) or not 0 <= tok < cfg.vocab_size:
                raise RequestError(f"{path}: sequences[{i}][{j}] = {tok!r}; expected a token id in [0, {cfg.vocab_size})")

    prompt_lens = req.get("prompt_lens", [len(s) for s in sequences])
    if not isinstance(prompt_lens, list) or len(prompt_lens) != len(sequences):
        raise RequestError(f"{path}: prompt_lens must be a list with one entry per sequence ({len(sequences)})")
    for i, n in enumerate(prompt_lens):
        if not _is_int(n) or not 1 <= n <= len(sequences[i]):
            raise RequestError(f"{path}: prompt_lens[{i}] = {n!r}; expected 1..{len(sequences[i])}")

    hidden_states = req.get("hidden_states", False)
    if not isinstance(hidden_states, bool):
        raise RequestError(f"{path}: hidden_states must be true or false")

    steering = req.get("steering", [])
    if not isinstance(steering, list):
        raise RequestError(f"{path}: steering must be a list")
    for k, entry in enumerate(steering):
        where = f"{path}: steering[{k}]"
        if not isinstance(entry, dict):
            raise RequestError(f"{where} must be an object")
        unknown = sorted(set(entry) - {"row", "layer", "multiplier", "positions", "vector", "op", "lo", "hi", "value", "k", "tokens", "hook", "head"})
        if unknown:
            raise RequestError(f"{where}: unknown field {unknown[0]!r}")
        for key in ("row", "layer", "multiplier", "positions", "vector"):
            if key not in entry:
                raise RequestError(f"{where}: missing field {key!r}")
        if not _is_int(entry["row"]) or not 0 <= entry["row"] < len(sequences):
            raise RequestError(f"{where}.row = {entry['row']!r}; expected 0..{len(sequences) - 1}")
        if not _is_int(entry["layer"]) or not 0 <= entry["layer"] < cfg.num_layers:
            raise RequestError(f"{where}.layer = {entry['layer']!r}; expected 0..{cfg.num_layers - 1}")
        if not _is_number(entry["multiplier"]):
            raise RequestError(f"{where}.multiplier = {entry['multiplier']!r}; expected a finite number")
        if entry["positions"] not in POSITION_MODES:
            raise RequestError(f"{where}.positions = {entry['positions']!r}; expected one of {list(POSITION_MODES)}")
        if entry.get("op", "add") not in STEERING_OPS:
            raise RequestError(f"{where}.op = {entry['op']!r}; expected one of {list(STEERING_OPS)}")
        for key in ("lo", "hi", "value"):
            if key in entry and not _is_number(entry[key]):
                raise RequestError(f"{where}.{key} = {entry[key]!r}; expected a finite number")
        if entry["positions"] == "first_k" and not (_is_int(entry.get("k")) and entry["k"] >= 1):
            raise RequestError(f"{where}.k = {entry.get('k')!r}; first_k needs an integer k >= 1")
        if entry["positions"] == "tokens" and not (isinstance(entry.get("tokens"), list) and all(_is_int(t) for t in entry["tokens"])):
            raise RequestError(f"{where}.tokens = {entry.get('tokens')!r}; tokens needs a list of positions")
        hook, head = entry.get("hook", "resid_post"), entry.get("head")
        if hook not in STEERING_HOOKS:
            raise RequestError(f"{where}.hook = {hook!r}; expected one of {list(STEERING_HOOKS)}")
        if head is not None and not (hook == "attn_z" and _is_int(head) and 0 <= head < cfg.num_heads):
            raise RequestError(f"{where}.head = {head!r}; expected a head 0..{cfg.num_heads - 1} with hook attn_z")
        width = cfg.hidden_size if hook != "attn_z" else cfg.head_dim if head is not None else cfg.num_heads * cfg.head_dim
        vector = entry["vector"]
        if not isinstance(vector, list) or len(vector) != width:
            n = len(vector) if isinstance(vector, list) else type(vector).__name__
            raise RequestError(f"{where}.vector has {n} values; expected {width} (hook {hook})")
        if not all(_is_number(x) for x in vector):
            raise RequestError(f"{where}.vector holds a value that is not a finite number")

    return {"sequences": sequences, "prompt_lens": prompt_lens, "hidden_states": hidden_states, "steering": steering}


# ----------------------------------------------------------------------------------------
# forward

def forward_sequence(model, tokens, prompt_len, steering):
    """Run one sequence (batch of 1) with its steering entries attached as forward hooks.
    tokens: list of ids; steering: entries for this row. Returns logits (T, V), hidden (L+1, T, H)."""
    T = len(tokens)
    handles = []
    try:
        for entry in steering:
            vector = torch.tensor(entry["vector"], dtype=torch.float64).to(model.dtype)  # (H,)
            mask = steering_mask(entry["positions"], T, prompt_len, entry.get("k"), entry.get("tokens"))  # (T,)
            layer = model.model.layers[entry["layer"]]
            handles.append(add_steering_hook(layer, vector, entry["multiplier"], mask, entry.get("op", "add"),
                                             entry.get("lo"), entry.get("hi"), entry.get("value"),
                                             entry.get("hook", "resid_post"), entry.get("head")))
        with torch.no_grad():
            logits, hidden_states = model(torch.tensor([tokens], dtype=torch.int64))
    finally:
        for handle in handles:
            handle.remove()
    return logits[0], torch.stack([h[0] for h in hidden_states])


def run_request(model, req):
    """All sequences of a parsed request -> {name: float32 tensor} for OUT.safetensors."""
    out = {}
    for i, tokens in enumerate(req["sequences"]):
        entries = [e for e in req["steering"] if e["row"] == i]
        logits, hidden = forward_sequence(model, tokens, req["prompt_lens"][i], entries)
        out[f"logits.{i}"] = logits.float()  # (T_i, V)
        if req["hidden_states"]:
            out[f"hidden.{i}"] = hidden.float()  # (L+1, T_i, H)
    return out



# ----------------------------------------------------------------------------------------
# bipo-grad

def parse_bipo_request(path, cfg):
    """Read and check BIPO.json. Returns a dict with sequences, prompt_lens, layer, direction,
    beta, vector (list) and ref_logps (list or None)."""
    fields = {"sequences", "prompt_lens", "layer", "direction", "beta", "vector", "ref_logps"}
    req = read_request_object(path, fields)
    for key in sorted(fields - {"ref_logps"}):
        if key not in req:
            raise RequestError(f"{path}: missing field {key!r}")

    sequences, prompt_lens = req["sequences"], req["prompt_lens"]
    if not isinstance(sequences, list) or not sequences or len(sequences) % 2:
        raise RequestError(f"{path}: sequences must be a non-empty list of (chosen, rejected) pairs")
    if not isinstance(prompt_lens, list) or len(prompt_lens) != len(sequences):
        raise RequestError(f"{path}: prompt_lens must have one entry per sequence ({len(sequences)})")
    for i, seq in enumerate(sequences):
        if not isinstance(seq, list) or not all(_is_int(t) and 0 <= t < cfg.vocab_size for t in seq):
            raise RequestError(f"{path}: sequences[{i}] must be a list of token ids in [0, {cfg.vocab_size})")
        n = prompt_lens[i]
        if not _is_int(n) or not 1 <= n < len(seq):
            raise RequestError(f"{path}: prompt_lens[{i}] = {n!r}; expected 1..{len(seq) - 1} (a non-empty response)")
    if not _is_int(req["layer"]) or not 0 <= req["layer"] < cfg.num_layers:
        raise RequestError(f"{path}: layer = {req['layer']!r}; expected 0..{cfg.num_layers - 1}")
    if req["direction"] not in (1, -1):
        raise RequestError(f"{path}: direction = {req['direction']!r}; expected 1 or -1")
    if not _is_number(req["beta"]):
        raise RequestError(f"{path}: beta = {req['beta']!r}; expected a finite number")
    vector = req["vector"]
    if not isinstance(vector, list) or len(vector) != cfg.hidden_size or not all(_is_number(x) for x in vector):
        raise RequestError(f"{path}: vector must hold hidden_size = {cfg.hidden_size} finite numbers")
    ref = req.get("ref_logps")
    if ref is not None and (not isinstance(ref, list) or len(ref) != len(sequences) or not all(_is_number(x) for x in ref)):
        raise RequestError(f"{path}: ref_logps must hold one finite number per sequence ({len(sequences)})")
    return {**req, "ref_logps": ref}


def response_logp(model, tokens, prompt_len):
    """Summed log-prob of tokens[prompt_len:] given what precedes each (batch of 1, no padding)."""
    logits, _ = model(torch.tensor([tokens], dtype=torch.int64))  # (1, T, V)
    logp = logits[0, :-1].log_softmax(-1)  # (T-1, V): row t scores token t+1
    targets = torch.tensor(tokens[1:], dtype=torch.int64)
    per_token = logp.gather(1, targets[:, None])[:, 0]  # (T-1,)
    return per_token[prompt_len - 1:].sum()


def bipo_loss(model, req, vector, ref_logps):
    """The BiPO loss of the batch with h_L <- h_L + direction*vector at every position (a forward hook,
    as the reference's BlockWrapper adds it). vector (H,) may require grad. Returns (loss, logps (n,))."""
    layer = model.model.layers[req["layer"]]
    logps = []
    for tokens, prompt_len in zip(req["sequences"], req["prompt_lens"]):
        mask = steering_mask("all", len(tokens), prompt_len)
        handle = add_steering_hook(layer, vector, float(req["direction"]), mask)
        try:
            logps.append(response_logp(model, tokens, prompt_len))
        finally:
            handle.remove()
    logps = torch.stack(logps)
    chosen, rejected = logps[0::2], logps[1::2]
    logits = (chosen - rejected) - (ref_logps[0::2] - ref_logps[1::2])
    if req["direction"] < 0:
        logits = -logits
    return (-F.logsigmoid(req["beta"] * logits)).mean(), logps


def run_bipo_grad(model, req, fd_directions=0, fd_eps=1e-4, seed=0):
    """{name: tensor} for OUT.safetensors: loss, grad and log-probs; with fd_directions, central
    differences of the loss along that many random unit directions."""
    dtype = model.dtype
    if req["ref_logps"] is not None:
        ref_logps = torch.tensor(req["ref_logps"], dtype=torch.float64).to(dtype)
    else:
        with torch.no_grad():
            ref_logps = torch.stack([response_logp(model, t, p) for t, p in zip(req["sequences"], req["prompt_lens"])])
    vector = torch.tensor(req["vector"], dtype=torch.float64).to(dtype).requires_grad_(True)
    loss, logps = bipo_loss(model, req, vector, ref_logps)
    (grad,) = torch.autograd.grad(loss, vector)
    out = {"loss": loss.detach().reshape(1), "grad": grad, "logps": logps.detach(), "ref_logps": ref_logps}
    if fd_directions:
        gen = torch.Generator().manual_seed(seed)
        dirs = torch.randn(fd_directions, vector.shape[0], generator=gen, dtype=torch.float64).to(dtype)
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        fd = []
        with torch.no_grad():
            for u in dirs:
                plus, _ = bipo_loss(model, req, vector.detach() + fd_eps * u, ref_logps)
                minus, _ = bipo_loss(model, req, vector.detach() - fd_eps * u, ref_logps)
                fd.append((plus - minus) / (2 * fd_eps))
        out["fd_directions"] = dirs
        out["fd"] = torch.stack(fd)
        out["directional"] = dirs @ grad
    return out

def padded_response_logps(model, sequences, prompt_lens):
    """(n,) summed response log-probs of right-padded sequences run as one batch, as the reference
    (TRL's concatenated_forward + get_batch_logps) computes them."""
    n, T = len(sequences), max(len(s) for s in sequences)
    tokens = torch.zeros(n, T, dtype=torch.int64)
    labels = torch.full((n, T), -100, dtype=torch.int64)
    for i, (seq, p) in enumerate(zip(sequences, prompt_lens)):
        tokens[i, :len(seq)] = torch.tensor(seq)
        labels[i, p:len(seq)] = torch.tensor(seq[p:])
    logits, _ = model(tokens)  # (n, T, V)
    labels, logits = labels[:, 1:], logits[:, :-1]
    mask = labels != -100
    per_token = logits.log_softmax(-1).gather(2, labels.clamp(min=0)[..., None])[..., 0]  # (n, T-1)
    return (per_token * mask).sum(-1)


def time_bipo_step(model, req, repeat):
    import time
    with torch.no_grad():
        ref = padded_response_logps(model, req["sequences"], req["prompt_lens"])
    vector = torch.nn.Parameter(torch.tensor(req["vector"], dtype=model.dtype))
    optimizer = torch.optim.AdamW([vector], lr=5e-4, weight_decay=0.0)
    layer = model.model.layers[req["layer"]]
    T = max(len(s) for s in req["sequences"])
    times, loss = [], None
    for _ in range(repeat + 1):  # the first step warms up
        start = time.perf_counter()
        handle = add_steering_hook(layer, vector, float(req["direction"]), torch.ones(T, dtype=torch.bool))
        try:
            logps = padded_response_logps(model, req["sequences"], req["prompt_lens"])
        finally:
            handle.remove()
        logits = (logps[0::2] - logps[1::2]) - (ref[0::2] - ref[1::2])
        if req["direction"] < 0:
            logits = -logits
        loss = (-F.logsigmoid(req["beta"] * logits)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([vector], 1.0)
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    times = sorted(times[1:])
    return {"median_s": times[len(times) // 2], "min_s": times[0], "threads": torch.get_num_threads(), "loss": float(loss),
            **blas_in_use()}


def blas_in_use():
    """Which BLAS library this process has mapped (torch's build configuration names only the interface it was
    compiled against, not the library the loader found) and the f32 GFLOP/s of a (512, 2048) x (2048, 2048)
    matmul, which tells the reference BLAS (a few GFLOP/s) from OpenBLAS (near the FMA peak)."""
    import time
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "blas" in line.rsplit("/", 1)[-1]})
    a, b = torch.randn(512, 2048), torch.randn(2048, 2048)
    a @ b
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return {"blas": [os.path.realpath(lib) for lib in libs], "matmul_gflops": 2 * 512 * 2048 * 2048 / best / 1e9}


# ----------------------------------------------------------------------------------------
# commands

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def cmd_forward(args):
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise RequestError(f"--out {args.out}: directory {out_dir} does not exist")
    model = load_model(args.model, DTYPES[args.dtype])
    req = parse_request(args.request, model.config)
    out = run_request(model, req)
    metadata = {"format": "steerengine-oracle-forward/1", "model": args.model, "compute_dtype": args.dtype,
                "num_sequences": str(len(req["sequences"])), "hidden_states": str(req["hidden_states"]).lower()}
    write_safetensors(args.out, out, dtype="F32", metadata=metadata)


def cmd_bipo_grad(args):
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise RequestError(f"--out {args.out}: directory {out_dir} does not exist")
    model = load_model(args.model, DTYPES[args.dtype])
    req = parse_bipo_request(args.request, model.config)
    out = run_bipo_grad(model, req, args.fd, args.fd_eps, args.seed)
    metadata = {"format": "steerengine-oracle-bipo-grad/1", "model": args.model, "compute_dtype": args.dtype,
                "fd_eps": repr(args.fd_eps)}
    write_safetensors(args.out, out, dtype="F32", metadata=metadata)


def cmd_bipo_step(args):
    torch.set_num_threads(args.threads)  # this build defaults to one thread; time it on the cores the engine uses
    model = load_model(args.model, torch.float32)
    req = parse_bipo_request(args.request, model.config)
    print(json.dumps(time_bipo_step(model, req, args.repeat)))


def cmd_init_check(args):
    model = load_model(args.model, torch.float32)
    cfg = model.config
    with torch.no_grad():
        logits, _ = model(torch.tensor([[0, 1 % cfg.vocab_size]], dtype=torch.int64))
    summary = {
        "model_dir": args.model,
        "model_type": cfg.model_type,
        "num_layers": cfg.num_layers,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_heads": cfg.num_heads,
        "num_kv_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": cfg.rope_scaling,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "param_count": sum(p.numel() for p in model.parameters()),  # a tied lm_head counts once
        "stored_dtypes": model.stored_dtypes,
        "two_token_logits_finite": bool(torch.isfinite(logits).all()),
    }
    print(json.dumps(summary, indent=2))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="oracle.py", description="PyTorch reference outputs for SteerEngine tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    fwd = sub.add_parser("forward", help="logits (and hidden states) for a request file")
    fwd.add_argument("--model", required=True, help="Hugging Face model directory")
    fwd.add_argument("--request", required=True, help="request JSON")
    fwd.add_argument("--out", required=True, help="output .safetensors")
    fwd.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="compute dtype (output is float32)")
    bg = sub.add_parser("bipo-grad", help="BiPO loss of a batch and its gradient w.r.t. the steering vector")
    bg.add_argument("--model", required=True, help="Hugging Face model directory")
    bg.add_argument("--request", required=True, help="request JSON")
    bg.add_argument("--out", required=True, help="output .safetensors")
    bg.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="compute dtype")
    bg.add_argument("--fd", type=int, default=0, metavar="K", help="also central differences along K random directions")
    bg.add_argument("--fd-eps", type=float, default=1e-4, help="finite-difference step")
    bg.add_argument("--seed", type=int, default=0, help="seed of the finite-difference directions")
    bs = sub.add_parser("bipo-step", help="time one BiPO training step (forward, backward, AdamW) in float32")
    bs.add_argument("--model", required=True, help="Hugging Face model directory")
    bs.add_argument("--request", required=True, help="request JSON (as bipo-grad's)")
    bs.add_argument("--repeat", type=int, default=5, help="timed steps after one warm-up step")
    bs.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)")
    chk = sub.add_parser("init-check", help="load a model and print a JSON summary")
    chk.add_argument("--model", required=True, help="Hugging Face model directory")
    args = parser.parse_args(argv)

    try:
        if args.command == "forward":
            cmd_forward(args)
        elif args.command == "bipo-grad":
            cmd_bipo_grad(args)
        elif args.command == "bipo-step":
            cmd_bipo_step(args)
        else:
            cmd_init_check(args)
    except (RequestError, ModelError, SafetensorsError) as e:
        print(f"oracle: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"oracle: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
