"""CommonsenseQA rows (`tau/commonsense_qa`): five lettered choices, answerKey a letter."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NOUNS, letter, options, question, rng


@rows("commonsense_qa", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("commonsense_qa", split, seed)
    out = []
    for i in range(n):
        text = question(r)
        out.append(
            {
                "id": f"{r.getrandbits(128):032x}",
                "question": text + (" " if i % 4 == 0 else ""),  # stray trailing spaces occur
                "question_concept": r.choice(NOUNS),
                "choices": {"label": [letter(k) for k in range(5)], "text": options(r, 5)},
                "answerKey": letter(r.randint(0, 4)),
            }
        )
    return out
