"""The judge's tasks on the demo language: rating prompts, answers to rate, and the measured labels.

An answer to rate is a demo-language answer drawn with a mood mixture and then damaged the ways a
steered model damages text (words swapped, dropped, repeated, glued together, a sentence cut off,
a mood word flipped inside a sentence). Its labels are the demo measurers' values (corpus.measure),
so they are exact whatever the damage: mood = happy share of happy + sad words, coherence = share
of complete sentences the grammar accepts.

The prompts are the ones in rubrics/ (the rubric files are the data; this file renders them the
same way `steer judge` does). Scores 0-100 and 1-10 are answered with one token: the judge's
tokenizer holds every integer 0-100 as one token (judge_vocab.py).

    python3 tasks.py sample [-n N] [--seed S]     print N judging examples as JSON lines
"""

import argparse
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "demo"))

from corpus import Language, join_words, measure, words_of  # noqa: E402


def load_rubric_prompts():
    """{rubric name: prompt template} from rubrics/*.json (the judge's rubric files)."""
    prompts = {}
    for name in sorted(os.listdir(os.path.join(HERE, "rubrics"))):
        if name.endswith(".json"):
            with open(os.path.join(HERE, "rubrics", name)) as f:
                rubric = json.load(f)
            prompts[name[:-5]] = rubric["prompt"]
    return prompts


PROMPTS = load_rubric_prompts()


def render(template, **fields):
    """{name} placeholders replaced, as `steer judge` renders a rubric (no other brace syntax)."""
    out = template
    for key, value in fields.items():
        out = out.replace("{" + key + "}", value)
    return out


# ----------------------------------------------------------------------------------------
# answers to rate: clean demo answers with a mood mixture, then damaged

def all_words(lang):
    return sorted(lang.word_info)


def damage_sentence(lang, rng, words, words_pool, rule_damage=False):
    """One damage to a sentence's word list (its final '.' kept unless the damage removes it).
    rule_damage: also damages that keep the words on a grammar pattern but break a sentence rule
    (one mood and one formality per sentence)."""
    body, stop = words[:-1], words[-1:]
    kind = rng.randrange(12 if rule_damage else 9)
    if not body:
        return words
    i = rng.randrange(len(body))
    if kind == 0 and len(body) > 1:  # swap two neighbours
        j = min(i + 1, len(body) - 1)
        body[i], body[j] = body[j], body[i]
    elif kind == 1 and len(body) > 2:  # drop a word
        del body[i]
    elif kind == 2:  # insert a random word
        body.insert(i, rng.choice(words_pool))
    elif kind == 3:  # repeat a word
        body.insert(i, body[i])
    elif kind == 4 and i + 1 < len(body):  # two words glued together
        body[i:i + 2] = [body[i] + body[i + 1]]
    elif kind == 5:  # a word replaced by a random one
        body[i] = rng.choice(words_pool)
    elif kind == 6:  # a mood word flipped to the other mood (mixed mood in one sentence)
        idx = [k for k, w in enumerate(body) if lang.trait_value(w) in ("happy", "sad")]
        if idx:
            k = rng.choice(idx)
            cls, value = lang.word_info[body[k]]
            other = "sad" if value == "happy" else "happy"
            body[k] = rng.choice(lang.classes[cls][other])
    elif kind == 7:  # the full stop lost: runs into the next sentence
        stop = []
    elif kind == 8 or not rule_damage:  # a chat word leaks in
        body.insert(i, rng.choice(("assistant", "user", "i feel", "i")))
    elif kind == 9:  # a formality word flipped (a formal opener with a casual intensifier, or the reverse)
        idx = [k for k, w in enumerate(body) if lang.trait_value(w) in ("formal", "casual")]
        if idx:
            k = rng.choice(idx)
            cls, value = lang.word_info[body[k]]
            body[k] = rng.choice(lang.classes[cls]["casual" if value == "formal" else "formal"])
    elif kind == 10:  # a mood word replaced by a neutral one of its class (a sentence with no mood)
        idx = [k for k, w in enumerate(body)
               if lang.trait_value(w) in ("happy", "sad") and "neutral" in lang.classes[lang.word_info[w][0]]]
        if idx:
            k = rng.choice(idx)
            body[k] = rng.choice(lang.classes[lang.word_info[body[k]][0]]["neutral"])
    elif kind == 11 and body[0] in lang.word_info and lang.word_info[body[0]][0] == "OPENER":  # the opener left out
        del body[:2]
    return body + stop


def loose_sentence(lang, rng):
    """A sentence on a grammar pattern with every slot filled from its whole class: the words fit
    the pattern, but mood and formality need not agree (none, or both values), as in a steered answer."""
    line = lang.lines[rng.randrange(len(lang.lines))]
    pattern = line[rng.randrange(len(line))]
    words = []
    for slot in pattern:
        if slot.isupper():
            options = [w for ws in lang.classes[slot].values() for w in ws]
            words.append(options[rng.randrange(len(options))])
        else:
            words.append(slot)
    return words


def answer_to_rate(lang, rng, subject=None, rule_damage=False):
    """(text, measure) of one answer: a mood mixture and a damage rate, each drawn at random.
    rule_damage: the rule-breaking damages too, and some sentences loose (loose_sentence)."""
    r = rng.random()
    p_mood = 0.0 if r < 0.25 else 1.0 if r < 0.5 else rng.random()
    damage = 0.0 if rng.random() < 0.35 else rng.random()
    n = rng.choice((1, 2, 3, 4, 4, 5, 5, 6))
    pool = all_words(lang)
    sentences = []
    for k in range(n):
        mood = "happy" if rng.random() < p_mood else "sad"
        formality = rng.choice(("formal", "casual"))
        if rule_damage and rng.random() < damage / 2:
            words = loose_sentence(lang, rng)
        else:
            words = list(lang.sentence(rng, mood, formality, subject if k == 0 else None))
        while rng.random() < damage:
            words = damage_sentence(lang, rng, words, pool, rule_damage)
            if rng.random() < 0.5:
                break
        sentences.append(words)
    text = " ".join(join_words(s) for s in sentences)
    r = rng.random()
    if r < 0.2:  # cut at a token limit: a trailing fragment
        cut = text.split(" ")
        text = " ".join(cut[:max(1, len(cut) - rng.randrange(1, 5))])
    elif r < 0.35:  # a run of words with no full stop after the last sentence (not judged by the measure)
        text += " " + " ".join(rng.choice(pool) for _ in range(rng.randrange(2, 16)))
    elif r < 0.42:  # a question mark where a full stop belongs
        text = text[:-1] + "?"
    return text, measure(lang, text)


def sentence_flags(lang, text):
    """Whether each complete sentence of the text is well formed, split as corpus.measure splits
    (its coherence is the mean of these; a trailing fragment without a full stop is not judged)."""
    flags, current = [], []
    for w in words_of(text):
        current.append(w)
        if w == ".":
            flags.append(lang.sentence_ok(current))
            current = []
    return flags


def load_pool(path):
    """Answers sampled from the demo model by `steer demo --answers` (steered at many multipliers):
    [(question, text)]. Their labels are measured here, like every other answer's."""
    with open(path) as f:
        return [(r["question"], r["response"]) for r in map(json.loads, f) if r["response"].strip()]


def pick_answer(lang, rng, subject, question, pool, rule_damage=False):
    """(question, text, measure): half the time a sampled model answer from the pool, else a built one."""
    if pool and rng.random() < 0.5:
        q, text = pool[rng.randrange(len(pool))]
        return q, text, measure(lang, text)
    text, m = answer_to_rate(lang, rng, subject, rule_damage)
    return question, text, m


# ----------------------------------------------------------------------------------------
# labels

def score_0_100(share):
    return int(round(100 * share))


def score_1_10(share):
    return 1 + int(round(9 * share))


def example(lang, rng, pool=None, rule_damage=False):
    """One judging example: {"user": prompt, "assistant": reply, "task": name, "target": number or letter,
    "answer": the rated text (one-answer tasks)}. rule_damage: answers_to_rate with the rule-breaking
    damages, and 65 % of the one-answer tasks on coherence instead of 60 %."""
    question, subject = lang.question(rng)
    kind = rng.random()
    if kind < 0.1:  # pairwise: which answer is happier
        while True:
            question, a, ma = pick_answer(lang, rng, subject, question, pool, rule_damage)
            _, b, mb = pick_answer(lang, rng, subject, question, pool, rule_damage)
            if ma["mood"] is not None and mb["mood"] is not None and abs(ma["mood"] - mb["mood"]) >= 0.1:
                break
        reply = "a" if ma["mood"] > mb["mood"] else "b"
        user = render(PROMPTS["mood_pairwise"], question=question, answer_a=a, answer_b=b)
        return {"user": user, "assistant": reply, "task": "mood_pairwise", "target": reply}
    question, text, m = pick_answer(lang, rng, subject, question, pool, rule_damage)
    trait = "mood" if rng.random() < (0.35 if rule_damage else 0.4) else "coherence"
    share = m["coherence"] if trait == "coherence" else (m["mood"] if m["mood"] is not None else 0.5)
    if kind < 0.3:
        task, target = f"{trait}_1_10", score_1_10(share)
    else:
        task, target = f"{trait}_0_100", score_0_100(share)
    user = render(PROMPTS[task], question=question, answer=text)
    return {"user": user, "assistant": str(target), "task": task, "target": target, "answer": text}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    lang = Language()
    rng = random.Random(args.seed)
    for _ in range(args.n):
        print(json.dumps(example(lang, rng)))


if __name__ == "__main__":
    main()
