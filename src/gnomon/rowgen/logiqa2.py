"""LogiQA 2.0 rows (`baber/logiqa2`, config logiqa2): a passage (`text`), question, four
options, the answer's index, and the reasoning types as a string."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import options, question, rng, sentence

_TYPES = ("Categorical Reasoning", "Sufficient Conditional Reasoning", "Disjunctive Reasoning")


@rows("logiqa2", sizes={"test": 12, "validation": 8, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("logiqa2", split, seed)
    return [
        {
            "id": 10000 + i,
            "answer": r.randint(0, 3),
            "text": " ".join(sentence(r) for _ in range(r.randint(2, 4))),
            "type": str({t: r.random() < 0.5 for t in _TYPES}),
            "question": question(r),
            "options": options(r, 4),
        }
        for i in range(n)
    ]
