"""CMMLU rows (haonan-li/cmmlu, one config per subject): `Question`, `A`..`D` and `Answer` (a
letter), capitalised as in the published CSV files. Rows carry their subject in `subject`, the
field the loader tags hub rows with (`source.subset_field`)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import letter, rng
from gnomon.rowgen._zh import options, stem

SUBJECTS = ["agronomy", "chinese_driving_rule", "elementary_information_and_technology", "virology"]


@rows("cmmlu", "cmmlu_opencompass", sizes={"test": 12, "dev": 5})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    """`dev` always has five rows per subject (as the real split); `n` is spread over subjects."""
    r = rng("cmmlu", split, seed)
    k = len(SUBJECTS)
    counts = [5] * k if split == "dev" else [n // k + (i < n % k) for i in range(k)]
    out = []
    for subject, count in zip(SUBJECTS, counts, strict=True):
        for _ in range(count):
            a, b, c, d = options(r)
            out.append(
                {
                    "Question": stem(r),
                    "A": a,
                    "B": b,
                    "C": c,
                    "D": d,
                    "Answer": letter(r.randrange(4)),
                    "subject": subject,
                }
            )
    return out
