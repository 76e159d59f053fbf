"""PyTorch reference outputs for SteerEngine's tests.

  oracle.py forward --model DIR --request REQ.json --out OUT.safetensors [--dtype float32|float64]
  oracle.py init-check --model DIR

REQ.json:
  {"sequences": [[token ids], ...],
   "prompt_lens": [n, ...],            optional; default: each sequence's full length
   "hidden_states": true|false,        optional; default false
   "steering": [{"row": 0, "layer": 2, "multiplier": 4.0,
                 "positions": "all"|"prompt"|"response", "vector": [H floats]}, ...]}   optional

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

from model import POSITION_MODES, ModelError, add_steering_hook, load_model, steering_mask
from safetensors_io import SafetensorsError, write_safetensors


class RequestError(Exception):
    """A request file that does not say what the oracle needs."""


# ----------------------------------------------------------------------------------------
# request

def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) and math.isfinite(x)


def parse_request(path, cfg):
    """Read and check REQ.json against the model's config. Returns a dict with sequences,
    prompt_lens, hidden_states and steering (each entry's vector still a list)."""
    try:
        with open(path) as f:
            req = json.load(f)
    except OSError as e:
        raise RequestError(f"{path}: cannot read ({e.strerror})")
    except json.JSONDecodeError as e:
        raise RequestError(f"{path}: not valid JSON ({e})")
    if not isinstance(req, dict):
        raise RequestError(f"{path}: expected a JSON object")
    unknown = sorted(set(req) - {"sequences", "prompt_lens", "hidden_states", "steering"})
    if unknown:
        raise RequestError(f"{path}: unknown field {unknown[0]!r}")

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
        unknown = sorted(set(entry) - {"row", "layer", "multiplier", "positions", "vector"})
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
        vector = entry["vector"]
        if not isinstance(vector, list) or len(vector) != cfg.hidden_size:
            n = len(vector) if isinstance(vector, list) else type(vector).__name__
            raise RequestError(f"{where}.vector has {n} values; expected hidden_size = {cfg.hidden_size}")
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
            mask = steering_mask(entry["positions"], T, prompt_len)  # (T,)
            layer = model.model.layers[entry["layer"]]
            handles.append(add_steering_hook(layer, vector, entry["multiplier"], mask))
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
    chk = sub.add_parser("init-check", help="load a model and print a JSON summary")
    chk.add_argument("--model", required=True, help="Hugging Face model directory")
    args = parser.parse_args(argv)

    try:
        if args.command == "forward":
            cmd_forward(args)
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
