"""The demo language: a seeded generator of chat examples, and its exact measurers.

The language is defined by lexicon.json (word classes and grammar lines); this file generates
from it and checks against it, using only the standard library. Two traits are carried by word
classes: mood (happy / sad adjectives, verbs, adverbs) and formality (formal / casual openers and
intensifiers). A user asks a question from a fixed set; the assistant answers with 3-5 sentences.
Each answer draws its mood (happy or sad) and its formality (formal or casual) at random, half
and half, and keeps them in every sentence, so each trait is a latent the model has to carry from
its first trait word to the end of the answer. An optional system prompt can fix either one.

    python3 corpus.py sample [--seed S] [-n N]      print N chat examples as JSON lines
    python3 corpus.py pairs                         rewrite the contrastive pair files (mood, formality)
    python3 corpus.py measure < texts.jsonl         {"text": ...} per line -> trait rates and coherence
"""

import argparse
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LEVELS = (0.0, 1.0)  # the share of happy (formal) sentences an answer draws


# ----------------------------------------------------------------------------------------
# lexicon and grammar

def load_lexicon(path=os.path.join(HERE, "lexicon.json")):
    with open(path) as f:
        return json.load(f)


def expand(line):
    """A grammar line -> every sequence of slots it allows. "[A B]" is an optional group, "X?" an
    optional slot; upper-case slots are word classes, anything else is a literal word."""
    tokens = line.split()
    results = [[]]
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.startswith("["):
            j = i
            while not tokens[j].endswith("]"):
                j += 1
            group = [tokens[i][1:]] + tokens[i + 1:j] + [tokens[j][:-1]]
            group = [g for g in group if g]
            results = [r + group for r in results] + [list(r) for r in results]
            i = j + 1
        elif t.endswith("?"):
            results = [r + [t[:-1]] for r in results] + [list(r) for r in results]
            i += 1
        else:
            results = [r + [t] for r in results]
            i += 1
    return results


class Language:
    def __init__(self, lexicon=None):
        self.lexicon = lexicon or load_lexicon()
        self.classes = self.lexicon["classes"]  # class -> value -> words
        self.trait_of_value = {v: trait for trait, values in self.lexicon["traits"].items() for v in values}
        self.word_info = {}  # word -> (class, value)
        for cls, by_value in self.classes.items():
            for value, words in by_value.items():
                for w in words:
                    if w in self.word_info:
                        raise ValueError(f"lexicon.json: word {w!r} is in two classes")
                    self.word_info[w] = (cls, value)
        self.lines = [expand(line) for line in self.lexicon["grammar"]]
        self.patterns = [p for line in self.lines for p in line]

    # ------------------------------------------------------------------------------------
    # measuring

    def trait_value(self, word):
        """'happy' / 'sad' / 'formal' / 'casual' for a trait word, else None."""
        info = self.word_info.get(word)
        return info[1] if info and info[1] in self.trait_of_value else None

    def sentence_ok(self, words):
        """True when the words (ending with '.') match a grammar pattern and the sentence rules."""
        if not any(self.matches(p, words) for p in self.patterns):
            return False
        seen = {}
        for w in words:
            value = self.trait_value(w)
            if value is not None:
                seen.setdefault(self.trait_of_value[value], set()).add(value)
        return all(len(seen.get(trait, ())) == 1 for trait in self.lexicon["traits"])

    def matches(self, pattern, words):
        if len(pattern) != len(words):
            return False
        for slot, w in zip(pattern, words):
            if slot.isupper():
                info = self.word_info.get(w)
                if info is None or info[0] != slot:
                    return False
            elif slot != w:
                return False
        return True

    def measure(self, text):
        """{trait: rate of its first value among its words (None if no such words)}, plus coherence
        (fraction of well-formed sentences) and the counts behind them."""
        return measure(self, text)

    # ------------------------------------------------------------------------------------
    # generating

    def sentence(self, rng, mood, formality, subject=None):
        """One well-formed sentence (a list of words) with the given trait values. subject:
        (noun, 'S' or 'P') to force the subject noun, or 'i' for the 'i feel' line."""
        while True:
            if subject == "i":
                candidates = self.lines[4]
            elif subject is not None:
                candidates = [p for p in self.patterns if first_noun_slot(p) == "NOUN_" + subject[1]]
            else:
                candidates = self.lines[rng.randrange(len(self.lines))]
            pattern = candidates[rng.randrange(len(candidates))]
            words = self.fill(rng, pattern, mood, formality, subject)
            if words is not None and self.sentence_ok(words):
                return words

    def fill(self, rng, pattern, mood, formality, subject):
        words = []
        first_noun = True
        for slot in pattern:
            if not slot.isupper():
                words.append(slot)
                continue
            by_value = self.classes[slot]
            if slot.startswith("NOUN") and first_noun and subject not in (None, "i"):
                words.append(subject[0])
                first_noun = False
                continue
            if slot.startswith("NOUN"):
                first_noun = False
            if mood in by_value:
                value = mood if "neutral" not in by_value or rng.random() < 0.6 else "neutral"
            elif formality in by_value:
                value = formality
            else:
                value = "neutral"
            options = by_value[value]
            words.append(options[rng.randrange(len(options))])
        return words

    def answer(self, rng, p_mood, q_formal, question_subject):
        n = rng.choice((3, 4, 4, 5))
        sentences = []
        for k in range(n):
            mood = "happy" if rng.random() < p_mood else "sad"
            formality = "formal" if rng.random() < q_formal else "casual"
            subject = question_subject if k == 0 else None
            sentences.append(self.sentence(rng, mood, formality, subject))
        return " ".join(join_words(s) for s in sentences)

    def question(self, rng):
        """(question text, subject of the first answer sentence)."""
        noun_s = self.classes["NOUN_S"]["neutral"]
        noun_p = self.classes["NOUN_P"]["neutral"]
        kind = rng.randrange(8)
        if kind == 0:
            return "how was your day?", None
        if kind == 1:
            return "how do you feel?", "i"
        i = rng.randrange(len(noun_s))
        plural = rng.random() < 0.4
        noun = noun_p[i] if plural else noun_s[i]
        number = "P" if plural else "S"
        det = rng.choice(("the", "your"))
        if kind in (2, 3):
            return f"tell me about {det} {noun}.", (noun, number)
        if kind in (4, 5):
            return f"what do you think of {det} {noun}?", (noun, number)
        if kind == 6:
            return f"how {'are' if plural else 'is'} {det} {noun}?", (noun, number)
        return f"describe {det} {noun}.", (noun, number)

    def example(self, rng):
        """One chat example: {"system": str or None, "user": str, "assistant": str, "mood": p, "formality": q}."""
        p = rng.choice(LEVELS)
        q = rng.choice(LEVELS)
        system = None
        r = rng.random()
        if r < 0.15:
            system = "you are a helpful assistant."
        elif r < 0.5:
            parts = []
            kind = rng.randrange(3)
            if kind in (0, 2):
                p = rng.choice((0.0, 1.0))
                parts.append("in a happy mood" if p == 1.0 else "in a sad mood")
            if kind in (1, 2):
                q = rng.choice((0.0, 1.0))
                parts.append("formally" if q == 1.0 else "casually")
            system = "answer " + " and ".join(parts) + "."
        user, subject = self.question(rng)
        return {"system": system, "user": user, "assistant": self.answer(rng, p, q, subject), "mood": p, "formality": q}

    def question_words(self):
        """Words of questions and system prompts that are not in the lexicon's classes."""
        return sorted(set("how was your day do you feel tell me about the what think of is are describe "
                          "a helpful assistant answer in happy sad mood formally casually and "
                          "system user assistant".split()))


def first_noun_slot(pattern):
    for slot in pattern:
        if slot.startswith("NOUN"):
            return slot
    return None


def join_words(words):
    text = " ".join(words)
    return text.replace(" ,", ",").replace(" .", ".")


def words_of(text):
    """Lower-cased words, with . , ? ! as words of their own."""
    return re.sub(r"([.,?!])", r" \1 ", text.lower()).split()


def measure(lang, text):
    """Trait rates over every word of the text; coherence over its complete sentences (a trailing
    fragment without a full stop, such as a response cut at the token limit, is not judged; a text
    with no complete sentence has coherence 0)."""
    words = words_of(text)
    counts = {v: 0 for v in lang.trait_of_value}
    for w in words:
        value = lang.trait_value(w)
        if value is not None:
            counts[value] += 1
    sentences, current = [], []
    for w in words:
        current.append(w)
        if w == ".":
            sentences.append(current)
            current = []
    good = sum(1 for s in sentences if lang.sentence_ok(s))
    result = {"sentences": len(sentences), "well_formed": good,
              "coherence": good / len(sentences) if sentences else 0.0, "counts": counts}
    for trait, (a, b) in lang.lexicon["traits"].items():
        total = counts[a] + counts[b]
        result[trait] = counts[a] / total if total else None
    return result


# ----------------------------------------------------------------------------------------
# contrastive pairs: the same answer with every trait word of one trait swapped to the other value

def contrast_pairs(lang, trait, n, seed):
    a, b = lang.lexicon["traits"][trait]
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        user, subject = lang.question(rng)
        if trait == "mood":
            text = lang.answer(rng, 1.0, rng.choice(LEVELS), subject)
        else:
            text = lang.answer(rng, rng.choice(LEVELS), 1.0, subject)
        swapped = []
        for w in re.sub(r"([.,])", r" \1", text).split():
            info = lang.word_info.get(w)
            if info and info[1] == a:
                i = lang.classes[info[0]][a].index(w)
                w = lang.classes[info[0]][b][i]
            swapped.append(w)
        pairs.append({"question": user, "positive": text, "negative": join_words(swapped)})
    return pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-n", type=int, default=10)
    sub.add_parser("pairs")
    sub.add_parser("measure")
    args = parser.parse_args()
    lang = Language()
    if args.command == "sample":
        rng = random.Random(args.seed)
        for _ in range(args.n):
            print(json.dumps(lang.example(rng)))
    elif args.command == "pairs":
        for trait, seed in (("mood", 101), ("formality", 102)):
            with open(os.path.join(HERE, f"{trait}_pairs.jsonl"), "w") as f:
                for pair in contrast_pairs(lang, trait, 64, seed):
                    f.write(json.dumps(pair) + "\n")
    else:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(measure(lang, json.loads(line)["text"])))


if __name__ == "__main__":
    main()
