"""WinoGrande rows (`allenai/winogrande`, config winogrande_xl): a sentence with one blank `_`,
two options, answer "1" or "2" (a string). The blank may be followed by "'s" or punctuation."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import NAMES, clause, rng


@rows("winogrande", "winogrande_5shot", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("winogrande", split, seed)
    out = []
    for i in range(n):
        a, b = r.sample(NAMES, 2)
        after = (" " + clause(r) + ".", "'s " + clause(r) + ".", ", so " + clause(r) + ".")[i % 3]
        sentence = f"{a} told {b} that {clause(r)} because _{after}"
        out.append({"sentence": sentence, "option1": a, "option2": b, "answer": r.choice("12")})
    return out
