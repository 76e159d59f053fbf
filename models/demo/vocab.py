"""The demo model's tokenizer: every word of the demo language is one token.

tokenizer.json is a Hugging Face byte-level BPE (Llama 3's split regex and chat specials) whose
vocabulary holds the 256 byte symbols, each word with and without its leading space ("Ġcat",
"cat"), and "ĊĊ". With `ignore_merges` a pre-token found whole in the vocabulary is one token,
so no merges are needed; any other text still encodes, byte by byte.
"""

import json
import os
import re
import sys

from corpus import Language

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# The same split for ASCII text, in Python's re (which has no \p{...}).
ASCII_SPLIT = re.compile(r"'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\na-zA-Z0-9]?[a-zA-Z]+|[0-9]{1,3}"
                         r"| ?[^\sa-zA-Z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_TEMPLATE = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
                   "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
                   "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
                   "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (byte-level BPE's alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_TO_CHAR = bytes_to_unicode()


def to_symbols(text):
    return "".join(BYTE_TO_CHAR[b] for b in text.encode("utf-8"))


class Tokenizer:
    def __init__(self, lang=None):
        lang = lang or Language()
        literals = {w for line in lang.lexicon["grammar"] for w in line.split() if w.isalpha() and w.islower()}
        words = sorted(set(lang.word_info) | literals | set(lang.question_words()))
        vocab = {}
        for b in range(256):
            vocab[BYTE_TO_CHAR[b]] = len(vocab)
        vocab[to_symbols("\n\n")] = len(vocab)
        for w in words:
            for form in (w, " " + w):
                symbols = to_symbols(form)
                if symbols not in vocab:  # one-letter words ("a", "i") are byte symbols already
                    vocab[symbols] = len(vocab)
        self.vocab = vocab
        self.special_ids = {s: len(vocab) + i for i, s in enumerate(SPECIALS)}
        self.words = len(vocab) + len(SPECIALS)  # ids below this are ever produced by encode
        # Reserved specials pad the id space to a multiple of 64 (the embedding table's rows), as
        # Llama 3 does, so every id the model can emit decodes.
        padded = (self.words + 63) // 64 * 64
        for i in range(padded - self.words):
            self.special_ids[f"<|reserved_special_token_{i}|>"] = self.words + i
        self.size = padded
        self.id_to_bytes = {i: bytes(CHAR_TO_BYTE[c] for c in s) for s, i in vocab.items()}
        self.id_to_bytes.update({i: s.encode() for s, i in self.special_ids.items()})
        self._specials = re.compile("(" + "|".join(re.escape(s) for s in self.special_ids) + ")")

    def encode(self, text):
        ids = []
        for part in self._specials.split(text):
            if part in self.special_ids:
                ids.append(self.special_ids[part])
                continue
            for piece in ASCII_SPLIT.findall(part):
                symbols = to_symbols(piece)
                if symbols in self.vocab:
                    ids.append(self.vocab[symbols])
                else:
                    ids.extend(self.vocab[c] for c in symbols)
        return ids

    def decode(self, ids):
        return b"".join(self.id_to_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def write(self, out_dir):
        added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for s, i in self.special_ids.items()]
        tokenizer = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                        {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [self.special_ids["<|begin_of_text|>"]],
                                                                        "tokens": ["<|begin_of_text|>"]}}},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                      "vocab": self.vocab, "merges": []},
        }
        config = {
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|eot_id|>",
            "clean_up_tokenization_spaces": False,
            "model_max_length": 256,
            "tokenizer_class": "PreTrainedTokenizerFast",
            "chat_template": LLAMA3_TEMPLATE,
            "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
        }
        with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
            json.dump(tokenizer, f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
            f.write("\n")


CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def render_chat(example, bos="<|begin_of_text|>"):
    """The Llama 3.0 template, for one example (what the chat_template renders, plus the answer)."""
    text = bos
    for role in ("system", "user", "assistant"):
        content = example.get(role)
        if content is not None:
            text += f"<|start_header_id|>{role}<|end_header_id|>\n\n{content.strip()}<|eot_id|>"
    return text


def main():
    """`python3 vocab.py encode < examples.jsonl`: the token ids of each example's rendered chat, one JSON list a line."""
    if sys.argv[1:] != ["encode"]:
        sys.exit("usage: vocab.py encode < examples.jsonl")
    tok = Tokenizer()
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(tok.encode(render_chat(json.loads(line)))))


if __name__ == "__main__":
    main()
