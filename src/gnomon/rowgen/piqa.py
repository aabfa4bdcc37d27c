"""PIQA rows (`baber/piqa`): a goal, two solutions, the index of the right one."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import clause, rng, sentence


@rows("piqa", sizes={"validation": 12, "train": 8})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("piqa", split, seed)
    out = []
    for i in range(n):
        goal = f"How do you make {clause(r)}?" if i % 3 else sentence(r)[:-1]  # some lack "?"
        sol1, sol2 = sentence(r), sentence(r)
        if i % 5 == 4:  # near twins, as PIQA's pairs often are: one word apart
            sol2 = sol1.replace(" the ", " the the ", 1) if " the " in sol1 else sol1 + " too"
        out.append({"goal": goal, "sol1": sol1, "sol2": sol2, "label": r.randint(0, 1)})
    return out
