"""LAMBADA (OpenAI's version, `EleutherAI/lambada_openai`, and its machine-translated configs,
which share the schema): one field, `text`, a passage whose last word (after the last single
space) is the word to predict. The real passages end on that word without punctuation, often one
named earlier in the passage (a person, an object); some hold quotes or double spaces, which the
single-space split keeps as empty words."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, NOUNS, VERBS, rng, sentence

_MULTILINGUAL = [f"lambada_openai_mt_{code}" for code in ("de", "en", "es", "fr", "it")]


@rows("lambada_openai", *_MULTILINGUAL, sizes={"test": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("lambada_openai", split, seed)
    out = []
    for i in range(n):
        name, noun = r.choice(NAMES), r.choice(NOUNS)
        lead = " ".join(sentence(r) for _ in range(r.randint(1, 3)))
        kind = i % 4
        if kind == 0:  # the answer is a name met earlier
            text = f"{name} {r.choice(VERBS)} the {noun}. {lead} They waited for {name}"
        elif kind == 1:  # dialogue in quotes, then the speaker
            text = f'"{lead}" said {name}, looking at the {noun}, and then at {name}'
        elif kind == 2:  # an object named earlier
            text = f"{lead} {name} picked up the {noun}.  It was the {noun}"
        else:  # a word never seen before in the passage
            text = f"{lead} In the end {name} {r.choice(VERBS)} the {r.choice(NOUNS)}"
        out.append({"text": text})
    return out
