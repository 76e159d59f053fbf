"""Self-tests for the oracle, runnable without transformers:
/usr/bin/python3 -m unittest discover -s tests/oracle -p 'test_*.py'

The model is checked against an independent float64 numpy implementation written with
explicit per-head, per-pair loops, and against properties any correct causal LM must have."""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

import model as M
from oracle import forward_sequence
from safetensors_io import SafetensorsError, read_model_weights, read_safetensors, write_safetensors
from tiny_models import TINY_LLAMA, TINY_QWEN3, write_model_dir

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENS = [5, 17, 299, 42, 0, 123, 7, 7, 250, 64, 1, 88]


# ----------------------------------------------------------------------------------------
# independent references

def slow_inv_freq(head_dim, theta, scaling):
    """Per-frequency loop in Python floats, straight from the llama3 rule."""
    out = []
    for i in range(head_dim // 2):
        f = 1.0 / theta ** (2 * i / head_dim)
        if scaling is not None:
            orig = scaling["original_max_position_embeddings"]
            low, high, factor = scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["factor"]
            wavelen = 2 * math.pi / f
            if wavelen > orig / low:
                f = f / factor
            elif wavelen >= orig / high:
                smooth = (orig / wavelen - low) / (high - low)
                f = (1 - smooth) * f / factor + smooth * f
        out.append(f)
    return np.array(out)


def rope_pairs(x, inv_freq):
    """x (T, heads, hd): rotate each pair (j, j + hd/2) of position t by angle t * inv_freq[j]."""
    T, _, hd = x.shape
    out = np.empty_like(x)
    for t in range(T):
        for j in range(hd // 2):
            c, s = math.cos(t * inv_freq[j]), math.sin(t * inv_freq[j])
            a, b = x[t, :, j], x[t, :, j + hd // 2]
            out[t, :, j] = a * c - b * s
            out[t, :, j + hd // 2] = b * c + a * s
    return out


def rms_norm_np(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def attention_loop(q, k, v):
    """q (T, nh, hd), k / v (T, nkv, hd): one head at a time, one query at a time."""
    T, nh, hd = q.shape
    group = nh // k.shape[1]
    out = np.zeros_like(q)
    for h in range(nh):
        kv = h // group
        for t in range(T):
            scores = np.array([q[t, h] @ k[u, kv] / math.sqrt(hd) for u in range(t + 1)])
            p = np.exp(scores - scores.max())
            p /= p.sum()
            out[t, h] = sum(p[u] * v[u, kv] for u in range(t + 1))
    return out


def numpy_forward(cfg, w, tokens):
    """Whole model in float64 numpy. Returns logits (T, V), hidden (L+1, T, H)."""
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps = cfg.get("head_dim") or H // nh, cfg["rms_norm_eps"]
    inv_freq = slow_inv_freq(hd, cfg["rope_theta"], cfg["rope_scaling"])
    T = len(tokens)
    x = w["model.embed_tokens.weight"][tokens]
    hidden = []
    for i in range(cfg["num_hidden_layers"]):
        hidden.append(x)
        p = f"model.layers.{i}."
        a = rms_norm_np(x, w[p + "input_layernorm.weight"], eps)
        q = (a @ w[p + "self_attn.q_proj.weight"].T).reshape(T, nh, hd)
        k = (a @ w[p + "self_attn.k_proj.weight"].T).reshape(T, nkv, hd)
        v = (a @ w[p + "self_attn.v_proj.weight"].T).reshape(T, nkv, hd)
        if cfg["model_type"] == "qwen3":
            q = rms_norm_np(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm_np(k, w[p + "self_attn.k_norm.weight"], eps)
        y = attention_loop(rope_pairs(q, inv_freq), rope_pairs(k, inv_freq), v)
        x = x + y.reshape(T, nh * hd) @ w[p + "self_attn.o_proj.weight"].T
        m = rms_norm_np(x, w[p + "post_attention_layernorm.weight"], eps)
        gate, up = m @ w[p + "mlp.gate_proj.weight"].T, m @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm_np(x, w["model.norm.weight"], eps)
    hidden.append(x)
    lm_head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ lm_head.T, np.stack(hidden)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.abs(a - b).max() / np.abs(b).max()


# ----------------------------------------------------------------------------------------

class SafetensorsTests(unittest.TestCase):
    def test_f32_and_bf16_round_trip(self):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(3, 5)).astype(np.float32)
        with tempfile.TemporaryDirectory() as d:
            write_safetensors(os.path.join(d, "a.safetensors"), {"x": x}, "F32", {"note": "hi"})
            t, meta = read_safetensors(os.path.join(d, "a.safetensors"))
            self.assertTrue(np.array_equal(t["x"].numpy(), x))
            self.assertEqual(meta, {"note": "hi"})
            write_safetensors(os.path.join(d, "b.safetensors"), {"x": x}, "BF16")
            t, _ = read_safetensors(os.path.join(d, "b.safetensors"))
            expected = torch.from_numpy(x).to(torch.bfloat16).float()  # torch rounds to nearest even
            self.assertTrue(torch.equal(t["x"], expected))

    def test_reads_f16(self):
        x = np.array([[1.5, -2.25], [65504.0, 1e-3]], dtype=np.float16)
        header = json.dumps({"h": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}}).encode()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.safetensors")
            with open(path, "wb") as f:
                f.write(len(header).to_bytes(8, "little") + header + x.tobytes())
            t, _ = read_safetensors(path)
            self.assertTrue(np.array_equal(t["h"].numpy(), x.astype(np.float32)))

    def test_truncated_file_is_rejected(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.safetensors")
            write_safetensors(path, {"x": np.ones((4, 4), np.float32)})
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) - 4)
            with self.assertRaises(SafetensorsError):
                read_safetensors(path)


class OpTests(unittest.TestCase):
    def test_rms_norm_matches_numpy(self):
        rng = np.random.default_rng(2)
        x, w = rng.normal(size=(7, 33)), rng.normal(size=33)
        got = M.rms_norm(torch.from_numpy(x), torch.from_numpy(w), 1e-5).numpy()
        self.assertLess(rel_err(got, rms_norm_np(x, w, 1e-5)), 1e-14)

    def test_llama3_inv_freq_matches_slow_loop(self):
        for hd, theta, scaling in [(16, 10000.0, TINY_LLAMA["rope_scaling"]),
                                   (128, 500000.0, {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                    "original_max_position_embeddings": 8192}),
                                   (64, 500000.0, {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                   "original_max_position_embeddings": 8192})]:
            cfg = M.Config("llama", 1, 1, 1, 1, 1, 1, hd, 1e-5, theta, scaling, False)
            got = M.rope_inv_freq(cfg).double().numpy()
            want = slow_inv_freq(hd, theta, scaling)
            self.assertLess(np.abs(got / want - 1).max(), 1e-6)
            self.assertEqual(got.dtype, np.float64)
        # the test config really exercises all three bands
        wavelen = 2 * math.pi / slow_inv_freq(16, 10000.0, None)
        self.assertTrue((wavelen < 16).any() and ((wavelen >= 16) & (wavelen <= 64)).any() and (wavelen > 64).any())

    def test_apply_rope_matches_pairwise_rotation(self):
        rng = np.random.default_rng(3)
        T, heads, hd = 9, 3, 16
        x = rng.normal(size=(T, heads, hd))
        inv_freq = torch.from_numpy(slow_inv_freq(hd, 10000.0, TINY_LLAMA["rope_scaling"]))
        cos, sin = M.rope_cos_sin(inv_freq, T, torch.float64)
        got = M.apply_rope(torch.from_numpy(x).transpose(0, 1)[None], cos, sin)[0].transpose(0, 1).numpy()
        self.assertLess(rel_err(got, rope_pairs(x, inv_freq.numpy())), 1e-14)

    def test_gqa_attention_matches_per_head_loop(self):
        rng = np.random.default_rng(4)
        T, nh, nkv, hd = 7, 6, 2, 8
        q, k, v = rng.normal(size=(T, nh, hd)), rng.normal(size=(T, nkv, hd)), rng.normal(size=(T, nkv, hd))
        tq, tk, tv = (torch.from_numpy(a).transpose(0, 1)[None] for a in (q, k, v))  # (1, heads, T, hd)
        got = M.causal_attention(tq, M.repeat_kv(tk, nh // nkv), M.repeat_kv(tv, nh // nkv), hd ** -0.5)
        self.assertLess(rel_err(got[0].transpose(0, 1).numpy(), attention_loop(q, k, v)), 1e-13)

    def test_steering_masks(self):
        self.assertEqual(M.steering_mask("all", 5, 3).tolist(), [True] * 5)
        self.assertEqual(M.steering_mask("prompt", 5, 3).tolist(), [True, True, True, False, False])
        self.assertEqual(M.steering_mask("response", 5, 3).tolist(), [False, False, True, True, True])


class ModelTestsBase:
    """Shared checks; subclasses set CFG and SHARDS."""
    CFG, SHARDS = None, 1

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, cls.CFG["model_type"])
        write_model_dir(cls.dir, cls.CFG, seed=7, shards=cls.SHARDS)
        cls.m32 = M.load_model(cls.dir, torch.float32)
        cls.m64 = M.load_model(cls.dir, torch.float64)
        cls.L = cls.CFG["num_hidden_layers"]
        cls.H = cls.CFG["hidden_size"]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_seq(self, model, tokens=TOKENS, prompt_len=None, steering=()):
        return forward_sequence(model, tokens, prompt_len or len(tokens), list(steering))

    def vector(self, seed):
        return np.random.default_rng(seed).normal(size=self.H).tolist()

    def test_logits_and_hidden_match_numpy_reference(self):
        w = {k: v.double().numpy() for k, v in read_model_weights(self.dir)[0].items()}
        want_logits, want_hidden = numpy_forward(self.CFG, w, TOKENS)
        logits64, hidden64 = self.run_seq(self.m64)
        logits32, hidden32 = self.run_seq(self.m32)
        self.assertLess(rel_err(logits64, want_logits), 1e-5)  # inv_freq is float32, as in HF
        self.assertLess(rel_err(hidden64, want_hidden), 1e-5)
        self.assertLess(rel_err(logits32, want_logits), 1e-4)
        self.assertGreater(np.abs(want_logits).max(), 1.0)  # not a degenerate model

    def test_float64_agrees_with_float32(self):
        logits64, hidden64 = self.run_seq(self.m64)
        logits32, hidden32 = self.run_seq(self.m32)
        self.assertLess(rel_err(logits32, logits64), 1e-5)
        self.assertLess(rel_err(hidden32, hidden64), 1e-5)

    def test_prefix_logits_equal_full_sequence_logits(self):
        full, _ = self.run_seq(self.m32)
        for k in (1, 5, len(TOKENS) - 1):
            prefix, _ = self.run_seq(self.m32, TOKENS[:k])
            self.assertLess(rel_err(prefix, full[:k]), 1e-6)

    def test_hidden_states_follow_hf_convention(self):
        logits, hidden = self.run_seq(self.m32)
        self.assertEqual(tuple(hidden.shape), (self.L + 1, len(TOKENS), self.H))
        embed = self.m32.model.embed_tokens.weight[TOKENS]
        self.assertTrue(torch.equal(hidden[0], embed))
        self.assertTrue(torch.equal(logits, self.m32.lm_head(hidden[-1])))

    def test_zero_multiplier_is_bit_identical(self):
        base_logits, base_hidden = self.run_seq(self.m32)
        entry = {"layer": 1, "multiplier": 0.0, "positions": "all", "vector": self.vector(1)}
        logits, hidden = self.run_seq(self.m32, steering=[entry])
        self.assertTrue(torch.equal(logits, base_logits))
        self.assertTrue(torch.equal(hidden, base_hidden))

    def check_steered(self, mode, prompt_len, layer=1, multiplier=4.0):
        """Steering at `layer`: hidden[0..layer] untouched; hidden[layer+1] = base + m*v exactly
        at the selected positions and untouched elsewhere."""
        base_logits, base_hidden = self.run_seq(self.m32, prompt_len=prompt_len)
        vec = self.vector(2)
        entry = {"layer": layer, "multiplier": multiplier, "positions": mode, "vector": vec}
        logits, hidden = self.run_seq(self.m32, prompt_len=prompt_len, steering=[entry])
        self.assertTrue(torch.equal(hidden[:layer + 1], base_hidden[:layer + 1]))
        mask = M.steering_mask(mode, len(TOKENS), prompt_len)
        delta = torch.tensor(multiplier, dtype=torch.float32) * torch.tensor(vec, dtype=torch.float32)
        self.assertTrue(torch.equal(hidden[layer + 1][mask], base_hidden[layer + 1][mask] + delta))
        self.assertTrue(torch.equal(hidden[layer + 1][~mask], base_hidden[layer + 1][~mask]))
        self.assertGreater(rel_err(logits, base_logits), 1e-3)
        return base_logits, base_hidden, logits, hidden

    def test_steering_all_positions(self):
        self.check_steered("all", len(TOKENS))

    def test_steering_prompt_positions(self):
        self.check_steered("prompt", 5)

    def test_steering_response_leaves_earlier_positions_alone(self):
        p = 5
        base_logits, base_hidden, logits, hidden = self.check_steered("response", p, layer=0)
        # causal: nothing before the last prompt position can see the steering, at any depth
        self.assertTrue(torch.equal(hidden[:, :p - 1], base_hidden[:, :p - 1]))
        self.assertTrue(torch.equal(logits[:p - 1], base_logits[:p - 1]))
        self.assertFalse(torch.equal(logits[p - 1], base_logits[p - 1]))

    def test_steering_entries_add(self):
        v1, v2 = self.vector(3), self.vector(4)
        _, base_hidden = self.run_seq(self.m64)
        entries = [{"layer": 1, "multiplier": 2.0, "positions": "all", "vector": v1},
                   {"layer": 1, "multiplier": -3.0, "positions": "all", "vector": v2},
                   {"layer": 0, "multiplier": 1.0, "positions": "all", "vector": v2}]
        _, hidden = self.run_seq(self.m64, steering=entries[:2])
        want = base_hidden[2] + 2.0 * torch.tensor(v1, dtype=torch.float64) - 3.0 * torch.tensor(v2, dtype=torch.float64)
        self.assertLess(rel_err(hidden[2], want), 1e-14)
        # entries at different layers compose: the layer-0 one changes what block 1 sees
        _, hidden3 = self.run_seq(self.m64, steering=entries)
        self.assertGreater(rel_err(hidden3[2], hidden[2]), 1e-3)

    def test_steering_last_block_is_normed(self):
        last = self.L - 1
        captured = []
        handle = self.m64.model.layers[last].register_forward_hook(lambda mod, inp, out: captured.append(out[0]))
        vec = self.vector(5)
        _, hidden = self.run_seq(self.m64, steering=[{"layer": last, "multiplier": 3.0, "positions": "all", "vector": vec}])
        handle.remove()
        # registered before the steering hook, so it saw the unsteered block output
        pre_norm = captured[0] + 3.0 * torch.tensor(vec, dtype=torch.float64)
        want = self.m64.model.norm(pre_norm)
        self.assertLess(rel_err(hidden[self.L], want), 1e-14)


class LlamaTests(ModelTestsBase, unittest.TestCase):
    CFG, SHARDS = TINY_LLAMA, 1


class Qwen3Tests(ModelTestsBase, unittest.TestCase):
    CFG, SHARDS = TINY_QWEN3, 3  # also exercises the sharded index and tied embeddings

    def test_tied_lm_head_is_embedding(self):
        self.assertIs(self.m32.lm_head.weight, self.m32.model.embed_tokens.weight)
        self.assertNotIn("lm_head.weight", read_model_weights(self.dir)[0])


class LoaderTests(unittest.TestCase):
    def test_missing_weight_and_bad_config_are_reported(self):
        with tempfile.TemporaryDirectory() as d:
            write_model_dir(d, TINY_LLAMA, shards=2)
            os.remove(os.path.join(d, "model-00002-of-00002.safetensors"))
            with self.assertRaisesRegex(SafetensorsError, "missing"):
                M.load_model(d)
        with tempfile.TemporaryDirectory() as d:
            write_model_dir(d, dict(TINY_LLAMA, rope_scaling={"rope_type": "yarn", "factor": 4.0}))
            with self.assertRaisesRegex(M.ModelError, "yarn"):
                M.load_model(d)
        with tempfile.TemporaryDirectory() as d:
            write_model_dir(d, dict(TINY_LLAMA, tie_word_embeddings=True))  # no lm_head.weight written
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(TINY_LLAMA, f)  # untied: lm_head.weight is required
            with self.assertRaisesRegex(M.ModelError, "lm_head.weight is missing"):
                M.load_model(d)


class CliTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "llama")
        write_model_dir(cls.dir, TINY_LLAMA, seed=11)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def oracle(self, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, "oracle.py"), *args],
                              capture_output=True, text=True, timeout=120)

    def write_request(self, req):
        path = os.path.join(self.tmp.name, "req.json")
        with open(path, "w") as f:
            json.dump(req, f)
        return path

    def test_forward_writes_logits_and_hidden_per_sequence(self):
        vec = np.random.default_rng(6).normal(size=TINY_LLAMA["hidden_size"]).tolist()
        steering = [{"row": 1, "layer": 2, "multiplier": 4.0, "positions": "response", "vector": vec}]
        req = {"sequences": [TOKENS, TOKENS[:7]], "prompt_lens": [12, 4], "hidden_states": True, "steering": steering}
        out = os.path.join(self.tmp.name, "out.safetensors")
        r = self.oracle("forward", "--model", self.dir, "--request", self.write_request(req), "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        t, meta = read_safetensors(out)
        self.assertEqual(sorted(t), ["hidden.0", "hidden.1", "logits.0", "logits.1"])
        self.assertEqual(tuple(t["logits.1"].shape), (7, 300))
        self.assertEqual(tuple(t["hidden.0"].shape), (4, 12, 64))
        self.assertEqual(meta["compute_dtype"], "float32")
        model = M.load_model(self.dir)
        logits1, hidden1 = forward_sequence(model, TOKENS[:7], 4, steering)
        self.assertTrue(torch.equal(t["logits.1"], logits1))
        self.assertTrue(torch.equal(t["hidden.1"], hidden1))

    def test_bad_request_gives_one_line_error_and_no_output(self):
        req = {"sequences": [TOKENS], "steering": [{"row": 0, "layer": 1, "multiplier": 1.0,
                                                    "positions": "all", "vector": [0.0] * 5}]}
        out = os.path.join(self.tmp.name, "bad.safetensors")
        r = self.oracle("forward", "--model", self.dir, "--request", self.write_request(req), "--out", out)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("steering[0].vector", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_init_check_prints_summary(self):
        r = self.oracle("init-check", "--model", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout)
        c = TINY_LLAMA
        H, I, V, hd = c["hidden_size"], c["intermediate_size"], c["vocab_size"], 16
        per_layer = 2 * H + H * hd * (2 * c["num_attention_heads"] + 2 * c["num_key_value_heads"]) + 3 * H * I
        self.assertEqual(summary["param_count"], 2 * V * H + H + c["num_hidden_layers"] * per_layer)
        self.assertEqual(summary["stored_dtypes"], ["BF16"])
        self.assertTrue(summary["two_token_logits_finite"])


if __name__ == "__main__":
    unittest.main()
