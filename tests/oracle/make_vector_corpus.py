"""Steering-vector files written and read by real PyTorch, for SteerEngine's vector-format tests.

  make_vector_corpus.py write DIR     write the corpus and DIR/manifest.json
  make_vector_corpus.py load FILE...  print JSON: what torch.load / numpy / the GGUF reader below find

manifest.json: {"hidden": H, "files": [{"file": NAME, "kind": "direction"|"per_layer",
"rows": [[H floats], ...]}]}, one row for a direction; values as float32 after the file's dtype.
A per-layer set is in the HF hidden-states numbering (row N+1 steers block N).

GGUF control vectors are written with the layout of gguf-py's GGUFWriter (what repeng's
export_gguf uses) and read back with a strict reader of the same layout; both are plain struct code.
"""

import io
import json
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

from safetensors_io import read_safetensors

HIDDEN = 37  # odd on purpose: no size is a multiple of a vector width
LAYERS = 4  # per-layer sets have LAYERS + 1 rows

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
GGUF_DEFAULT_ALIGNMENT = 32
GGML_TYPE_F32 = 0
# gguf-py GGUFValueType
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i", FLOAT32: "<f",
           BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}


# ---- GGUF ---------------------------------------------------------------------------------

def _gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _gguf_value(vtype, value):
    if vtype == STRING:
        return _gguf_string(value)
    if vtype == ARRAY:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(_gguf_value(etype, v) for v in items)
    return struct.pack(_SCALAR[vtype], value)


def _pad(n, alignment):
    return (alignment - n % alignment) % alignment


def write_gguf(path, kv, tensors):
    """kv: [(key, type, value)] in order; tensors: [(name, float32 1-D array)] in order.
    Header, kv pairs, tensor infos (dims fastest-first, offsets aligned), zero padding to the
    alignment, then each tensor's data followed by zero padding to the alignment (gguf-py pads
    after every tensor, the last one included)."""
    alignment = GGUF_DEFAULT_ALIGNMENT
    for key, vtype, value in kv:
        if key == "general.alignment":
            alignment = value
    out = bytearray(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kv)))
    for key, vtype, value in kv:
        out += _gguf_string(key) + struct.pack("<I", vtype) + _gguf_value(vtype, value)
    offset = 0
    for name, data in tensors:
        out += _gguf_string(name) + struct.pack("<I", data.ndim)
        out += b"".join(struct.pack("<Q", d) for d in reversed(data.shape))
        out += struct.pack("<IQ", GGML_TYPE_F32, offset)
        offset += data.nbytes + _pad(data.nbytes, alignment)
    out += bytes(_pad(len(out), alignment))
    for _, data in tensors:
        out += data.astype("<f4").tobytes() + bytes(_pad(data.nbytes, alignment))
    with open(path, "wb") as f:
        f.write(out)


def read_gguf(path):
    """Strict reader: returns ({key: value}, {tensor name: float list}). Raises ValueError on any
    departure from the layout write_gguf (and gguf-py) produces."""
    with open(path, "rb") as f:
        b = f.read()
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(b):
            raise ValueError(f"{path}: truncated at {pos}")
        pos += n
        return b[pos - n:pos]

    def string():
        (n,) = struct.unpack("<Q", take(8))
        return take(n).decode("utf-8")

    def value(vtype):
        if vtype == STRING:
            return string()
        if vtype == ARRAY:
            etype, count = struct.unpack("<IQ", take(12))
            return [value(etype) for _ in range(count)]
        fmt = _SCALAR[vtype]
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

    if take(4) != GGUF_MAGIC:
        raise ValueError(f"{path}: bad magic")
    version, n_tensors, n_kv = struct.unpack("<IQQ", take(20))
    if version != GGUF_VERSION:
        raise ValueError(f"{path}: version {version}")
    kv = {}
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack("<I", take(4))
        kv[key] = value(vtype)
    alignment = kv.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    infos = []
    for _ in range(n_tensors):
        name = string()
        (n_dims,) = struct.unpack("<I", take(4))
        dims = struct.unpack(f"<{n_dims}Q", take(8 * n_dims))
        gtype, offset = struct.unpack("<IQ", take(12))
        if gtype != GGML_TYPE_F32 or offset % alignment:
            raise ValueError(f"{path}: tensor {name} type {gtype} offset {offset}")
        infos.append((name, dims, offset))
    padding = take(_pad(pos, alignment))
    if any(padding):
        raise ValueError(f"{path}: non-zero padding before the data section")
    data_start = pos
    tensors = {}
    expected_offset = 0
    for name, dims, offset in infos:
        count = int(np.prod(dims))
        if offset != expected_offset:
            raise ValueError(f"{path}: tensor {name} at {offset}, expected {expected_offset}")
        raw = b[data_start + offset:data_start + offset + 4 * count]
        if len(raw) != 4 * count:
            raise ValueError(f"{path}: tensor {name} truncated")
        tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float64).tolist()
        expected_offset = offset + 4 * count + _pad(4 * count, alignment)
    if len(b) != data_start + expected_offset:
        raise ValueError(f"{path}: file is {len(b)} bytes, the layout ends at {data_start + expected_offset}")
    return kv, tensors


# ---- write --------------------------------------------------------------------------------

def _rows(t):
    t = t.detach().to(torch.float32)
    return [t.tolist()] if t.dim() == 1 else t.tolist()


def write_corpus(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(20240611)

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    files = []

    def expect(name, kind, tensor_or_rows):
        rows = tensor_or_rows if isinstance(tensor_or_rows, list) else _rows(tensor_or_rows)
        files.append({"file": name, "kind": kind, "rows": rows})

    def path_save(name, obj, expected, kind, **kwargs):
        torch.save(obj, os.path.join(out_dir, name), **kwargs)
        expect(name, kind, expected)

    def stream_save(name, obj, expected, kind):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(buffer.getvalue())
        expect(name, kind, expected)

    for dtype_name, dtype in [("f32", torch.float32), ("bf16", torch.bfloat16), ("f16", torch.float16), ("f64", torch.float64)]:
        direction = randn(HIDDEN).to(dtype)
        layers = randn(LAYERS + 1, HIDDEN).to(dtype)
        path_save(f"vec_{dtype_name}_direction.pt", direction, direction, "direction")
        path_save(f"vec_{dtype_name}_layers.pth", layers, layers, "per_layer")
        stream_save(f"stream_{dtype_name}_direction.pt", direction, direction, "direction")
        stream_save(f"stream_{dtype_name}_layers.pt", layers, layers, "per_layer")

    # Views: torch.save keeps the whole storage and records the view's offset and strides.
    matrix = randn(4, HIDDEN)
    path_save("vec_ep20_layer15.pt", matrix[2], matrix[2], "direction")  # storage offset 2*H
    stream_save("stream_row_view.pt", matrix[1].to(torch.bfloat16), matrix[1].to(torch.bfloat16), "direction")
    wide = randn(HIDDEN, LAYERS + 1)
    path_save("transposed_view.pt", wide.t(), wide.t(), "per_layer")  # strides (1, LAYERS+1)
    long_vector = randn(2 * HIDDEN)
    path_save("every_other_view.pt", long_vector[1::2], long_vector[1::2], "direction")  # offset 1, stride 2

    # Containers and variants researchers' scripts produce.
    vec = randn(HIDDEN)
    path_save("dict_vec.pt", {"vec": vec}, vec, "direction")
    path_save("dict_with_extras.pt", {"layer": 15, "vec": vec * 2, "note": "persona", "scale": 0.5}, vec * 2, "direction")
    path_save("ordered_dict.pt", OrderedDict([("steering", vec * 3)]), vec * 3, "direction")
    path_save("parameter.pt", torch.nn.Parameter(vec * 4), vec * 4, "direction")
    path_save("protocol4.pt", vec * 5, vec * 5, "direction", pickle_protocol=4)

    # GGUF control vectors. repeng: blocks LAYERS-1 .. 1 in that order, never block 0.
    directions = {block: randn(HIDDEN) for block in range(LAYERS - 1, 0, -1)}
    write_gguf(os.path.join(out_dir, "repeng.gguf"),
               [("general.architecture", STRING, "controlvector"),
                ("controlvector.model_hint", STRING, "llama"),
                ("controlvector.layer_count", UINT32, len(directions))],
               [(f"direction.{b}", d.numpy()) for b, d in directions.items()])
    rows = [[0.0] * HIDDEN for _ in range(LAYERS + 1)]
    for b, d in directions.items():
        rows[b + 1] = d.tolist()
    expect("repeng.gguf", "per_layer", rows)

    # Sparse layers, a custom alignment and metadata of every other value type.
    sparse = {5: randn(HIDDEN), 2: randn(HIDDEN)}
    write_gguf(os.path.join(out_dir, "sparse_aligned.gguf"),
               [("general.architecture", STRING, "controlvector"),
                ("general.alignment", UINT32, 64),
                ("controlvector.model_hint", STRING, "qwen3"),
                ("controlvector.layer_count", UINT32, len(sparse)),
                ("controlvector.method", STRING, "pca_diff"),
                ("controlvector.scale", FLOAT32, 0.25),
                ("controlvector.seed", INT64, -7),
                ("controlvector.normalized", BOOL, True),
                ("controlvector.small", UINT8, 3),
                ("controlvector.ratio", FLOAT64, 1.5),
                ("controlvector.layers", ARRAY, (UINT32, [5, 2])),
                ("controlvector.tags", ARRAY, (STRING, ["a", "bc"])),
                ("controlvector.nested", ARRAY, (ARRAY, [(INT16, [1, -2]), (INT16, [])]))],
               [(f"direction.{b}", d.numpy()) for b, d in sparse.items()])
    rows = [[0.0] * HIDDEN for _ in range(max(sparse) + 2)]
    for b, d in sparse.items():
        rows[b + 1] = d.tolist()
    expect("sparse_aligned.gguf", "per_layer", rows)

    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"hidden": HIDDEN, "files": files}, f)


# ---- load ---------------------------------------------------------------------------------

def load(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pt", ".pth"):
        t = torch.load(path, map_location="cpu")
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{path}: torch.load gave a {type(t).__name__}")
        return {"shape": list(t.shape), "dtype": str(t.dtype), "rows": _rows(t)}
    if ext == ".npy":
        a = np.load(path)
        return {"shape": list(a.shape), "dtype": str(a.dtype), "rows": _rows(torch.from_numpy(a))}
    if ext == ".safetensors":
        tensors, _ = read_safetensors(path)
        (t,) = tensors.values()
        return {"shape": list(t.shape), "dtype": str(t.dtype), "rows": _rows(t)}
    if ext == ".gguf":
        kv, tensors = read_gguf(path)
        return {"metadata": kv, "tensor_order": list(tensors), "directions": tensors}
    raise ValueError(f"{path}: unknown extension")


def main(argv):
    if len(argv) == 2 and argv[0] == "write":
        write_corpus(argv[1])
    elif len(argv) >= 2 and argv[0] == "load":
        json.dump({p: load(p) for p in argv[1:]}, sys.stdout)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
