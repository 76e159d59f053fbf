"""The judge's tokenizer: the demo tokenizer with the integers 10-100 and the rubric words added.

Every id of the demo tokenizer keeps its meaning (the judge starts from the demo model's weights),
and the new entries take ids after the demo's reserved specials: the integers 10-100 ("0"-"9" are
byte symbols already, so every integer 0-100 is one token; Llama 3's split regex cuts digit runs
into groups of at most three), then the rubric words that the demo vocabulary lacks, with and
without their leading space. Reserved specials pad the id space to a multiple of 64 again.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "demo"))

from vocab import Tokenizer, to_symbols, CHAR_TO_BYTE  # noqa: E402


def rubric_words(prompts):
    words = set()
    for template in prompts:
        text = re.sub(r"\{[a-z_]+\}", " ", template)
        words.update(w for w in re.findall(r"[a-z]+", text))
    return sorted(words)


class JudgeTokenizer(Tokenizer):
    def __init__(self, lang, prompts):
        super().__init__(lang)
        demo_size = self.size
        reserved = {s: i for s, i in self.special_ids.items() if s.startswith("<|reserved_special_token_")}
        next_id = demo_size
        added = []
        for n in range(10, 101):
            added.append(str(n))
        for w in rubric_words(prompts):
            added.extend((w, " " + w))
        for form in added:
            symbols = to_symbols(form)
            if symbols not in self.vocab:
                self.vocab[symbols] = next_id
                next_id += 1
        self.words = next_id
        padded = (next_id + 63) // 64 * 64
        for i in range(padded - next_id):
            self.special_ids[f"<|reserved_special_token_{len(reserved) + i}|>"] = next_id + i
        self.size = padded
        self.demo_size = demo_size
        self.id_to_bytes = {i: bytes(CHAR_TO_BYTE[c] for c in s) for s, i in self.vocab.items()}
        self.id_to_bytes.update({i: s.encode() for s, i in self.special_ids.items()})
        self._specials = re.compile("(" + "|".join(re.escape(s) for s in self.special_ids) + ")")
