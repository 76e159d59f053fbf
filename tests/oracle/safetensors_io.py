"""Read and write safetensors files with only the standard library and numpy.

File layout: an 8-byte little-endian u64 N, then N bytes of JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the data section; offsets are relative to the start of the data section.
"""

import json
import mmap
import os

import numpy as np
import torch


class SafetensorsError(Exception):
    """A file that is not a well-formed safetensors file (or not one we can read)."""


# safetensors dtype -> (numpy dtype as stored, bytes per element)
_STORED = {
    "F64": (np.dtype("<f8"), 8),
    "F32": (np.dtype("<f4"), 4),
    "F16": (np.dtype("<f2"), 2),
    "BF16": (np.dtype("<u2"), 2),  # raw bits; widened to f32 by bf16_bits_to_f32
}


def bf16_bits_to_f32(bits):
    """uint16 bf16 bit patterns -> float32 (exact: bf16 is the top half of an f32)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 -> uint16 bf16 bit patterns, round to nearest even (what torch does)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    return ((u + rounding) >> 16).astype(np.uint16)


def read_header(path):
    """Return (header dict without __metadata__, metadata dict, byte offset of the data section)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise SafetensorsError(f"{path}: too short to be a safetensors file")
            n = int.from_bytes(head, "little")
            if n == 0 or 8 + n > size:
                raise SafetensorsError(f"{path}: header length {n} does not fit in a {size}-byte file")
            header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not valid JSON ({e})")
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + n
    for name, info in header.items():
        if not isinstance(info, dict):
            raise SafetensorsError(f"{path}: header entry {name} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _STORED:
            raise SafetensorsError(f"{path}: tensor {name} has dtype {dtype}; expected one of {sorted(_STORED)}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
                and isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise SafetensorsError(f"{path}: tensor {name} has a malformed shape {shape} or data_offsets {offsets}")
        begin, end = offsets
        nbytes = int(np.prod(shape, dtype=np.int64)) * _STORED[dtype][1]
        if end - begin != nbytes or data_start + end > size or begin < 0:
            raise SafetensorsError(f"{path}: tensor {name} data_offsets {offsets} do not match shape {shape} {dtype}")
    return header, metadata, data_start


def read_safetensors(path):
    """Read every tensor of one file. Returns ({name: torch tensor}, metadata).

    BF16 and F16 are widened to float32 (exactly); F32 stays float32, F64 stays float64.
    """
    header, metadata, data_start = read_header(path)
    tensors = {}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for name, info in header.items():
            stored, itemsize = _STORED[info["dtype"]]
            begin, end = info["data_offsets"]
            raw = np.frombuffer(mm, dtype=stored, count=(end - begin) // itemsize, offset=data_start + begin)
            if info["dtype"] == "BF16":
                values = bf16_bits_to_f32(raw)  # new array
            elif info["dtype"] == "F16":
                values = raw.astype(np.float32)  # new array
            else:
                values = raw.astype(stored.newbyteorder("="), copy=True)
            del raw  # the mmap can only close once no array views it
            tensors[name] = torch.from_numpy(values.reshape(info["shape"]))
    return tensors, metadata


def read_model_weights(model_dir):
    """Read a Hugging Face model directory's weights: model.safetensors, or the shards listed
    in model.safetensors.index.json. Returns ({name: torch tensor}, {name: stored dtype})."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    single_path = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(index_path):
        try:
            with open(index_path) as f:
                weight_map = json.load(f)["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SafetensorsError(f"{index_path}: expected a JSON object with a weight_map ({e})")
        files = sorted(set(weight_map.values()))
    elif os.path.exists(single_path):
        weight_map, files = None, ["model.safetensors"]
    else:
        raise SafetensorsError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")

    tensors, dtypes = {}, {}
    for file_name in files:
        path = os.path.join(model_dir, file_name)
        if not os.path.exists(path):
            raise SafetensorsError(f"{path}: shard listed in the index is missing")
        header, _, _ = read_header(path)
        part, _ = read_safetensors(path)
        for name, tensor in part.items():
            if name in tensors:
                raise SafetensorsError(f"{path}: tensor {name} appears in more than one shard")
            tensors[name] = tensor
            dtypes[name] = header[name]["dtype"]
    if weight_map is not None:
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise SafetensorsError(f"{index_path}: tensor {missing[0]} is in the index but in no shard")
    return tensors, dtypes


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Write {name: tensor or array} as one safetensors file, every tensor stored as `dtype`
    ("F32", "F64" or "BF16"). metadata: {str: str}. Written to a temporary file, then renamed,
    so a reader never sees a partial file."""
    if dtype not in ("F32", "F64", "BF16"):
        raise SafetensorsError(f"write_safetensors: dtype {dtype}; expected F32, F64 or BF16")
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().double().numpy()
        value = np.asarray(value)
        if dtype == "BF16":
            blob = f32_to_bf16_bits(value.astype(np.float32)).astype("<u2").tobytes()
        else:
            blob = value.astype(_STORED[dtype][0]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep the data section 8-byte aligned

    tmp_path = path + ".tmp"
    with open(tmp_path, "wb") as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
