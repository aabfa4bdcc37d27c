"""Natural Questions open rows (google-research-datasets/nq_open): `question` (lower case, no
question mark) and `answer`, a list of one or more short answers."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, noun_phrase, question, rng


@rows("nq_open", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("nq_open", split, seed)
    out = []
    for i in range(n):
        answers = [noun_phrase(r) if i % 2 else r.choice(NAMES)]
        if i % 3 == 0:
            answers.append(f"{r.randint(2, 1999)}")
        if i % 4 == 1:
            answers.append("An " + answers[0].removeprefix("the "))
        out.append({"question": question(r).lower().rstrip("?"), "answer": answers})
    return out
