"""BoolQ rows (`aps/super_glue`, config boolq): passage, lower-case question without "?",
label 0 (no) or 1 (yes)."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import clause, rng, sentence


@rows("boolq", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("boolq", split, seed)
    return [
        {
            "question": f"does {clause(r)}",
            "passage": " ".join(sentence(r) for _ in range(r.randint(2, 5))),
            "idx": i,
            "label": r.randint(0, 1),
        }
        for i in range(n)
    ]
