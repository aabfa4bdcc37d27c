"""C-Eval rows (ceval/ceval-exam, one config per subject): `id` (int), `question`, `A`..`D`,
`answer` (a letter) and `explanation` (text in `dev`, mostly empty in `val`). Rows carry their
subject in `subject`, the field the loader tags hub rows with (`source.subset_field`)."""

from __future__ import annotations

import random

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import letter, rng
from gnomon.rowgen._zh import options, stem

# a few subjects, long and short Chinese names among them (the spec lists all 52)
SUBJECTS = ["computer_network", "mao_zedong_thought", "accountant", "high_school_chinese"]


def _row(r: random.Random, i: int, subject: str, split: str) -> RowDict:
    a, b, c, d = options(r)
    explanation = f"1. 首先，{stem(r).strip()}\r\n2. 其次，答案为{letter(r.randrange(4))}。"
    return {
        "id": i,
        "question": stem(r),
        "A": a,
        "B": b,
        "C": c,
        "D": d,
        "answer": letter(r.randrange(4)),
        "explanation": explanation if split == "dev" or r.random() < 0.2 else "",
        "subject": subject,
    }


@rows("ceval_valid", "ceval_valid_opencompass", sizes={"val": 12, "dev": 5})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    """`dev` always has five rows per subject (as the real split); `n` is spread over subjects."""
    r = rng("ceval", split, seed)
    k = len(SUBJECTS)
    counts = [5] * k if split == "dev" else [n // k + (i < n % k) for i in range(k)]
    return [
        _row(r, i, subject, split)
        for subject, count in zip(SUBJECTS, counts, strict=True)
        for i in range(count)
    ]
