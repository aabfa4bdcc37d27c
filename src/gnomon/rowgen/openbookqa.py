"""OpenBookQA rows (`allenai/openbookqa`, config main): a question stem to be completed, four
lettered choices, answerKey a letter."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import clause, letter, options, rng


@rows("openbookqa", sizes={"test": 12, "validation": 8, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("openbookqa", split, seed)
    out = []
    for i in range(n):
        stem = clause(r)
        out.append(
            {
                "id": f"{r.randint(7, 9999)}-{i}",
                "question_stem": stem[0].upper() + stem[1:],  # completed by the choice
                "choices": {"text": options(r, 4), "label": [letter(k) for k in range(4)]},
                "answerKey": letter(r.randint(0, 3)),
            }
        )
    return out
