"""BBH rows (SaylorTwift/bbh, one config per task, `test` only): `input` (the question, often with
"Options:\n(A) ..." lines) and `target` (a letter in parentheses, a word such as "True" or
"valid", a number, or a sequence); gnomon tags each row with its task in `subset`."""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import letter, options, question, rng, sentence

SUBSETS = ["boolean_expressions", "date_understanding", "object_counting", "word_sorting"]


def _row(r: random.Random, subset: str) -> RowDict:
    if subset == "boolean_expressions":
        truth = r.choice(["True", "False"])
        return {"input": f"not ( True and {truth} ) or False is", "target": truth}
    if subset == "object_counting":
        count = str(r.randint(2, 9))
        return {"input": f"I have {sentence(r)} How many do I have?", "target": count}
    if subset == "word_sorting":
        words = sentence(r).rstrip(".").lower().split()[:5]
        ask = "Sort the following words alphabetically: List: " + " ".join(words)
        return {"input": ask, "target": " ".join(sorted(words))}
    opts = options(r, 4)
    lines = "\n".join(f"({letter(k)}) {o}" for k, o in enumerate(opts))
    return {"input": f"{question(r)}\nOptions:\n{lines}", "target": f"({letter(r.randrange(4))})"}


@rows("bbh", sizes={"test": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("bbh", split, seed)
    subsets = [SUBSETS[i % len(SUBSETS)] for i in range(n)]
    return [{**_row(r, subset), "subset": subset} for subset in subsets]
