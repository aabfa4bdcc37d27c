"""RACE rows as lm-eval reads them (`EleutherAI/race`, config high): one row per article, its
questions in `problems`, a Python literal string of dicts (answer letter, four options,
question); a question may be a sentence to complete, ending in a blank `  _  .`."""

from __future__ import annotations

from gnomon.rowgen import RowDict, rows
from gnomon.rowgen._text import clause, letter, options, question, rng, sentence


@rows("race", sizes={"test": 12})
def make(split: str, n: int, seed: int) -> list[RowDict]:
    r = rng("race", split, seed)
    out = []
    for _ in range(n):
        problems = []
        for _ in range(r.randint(1, 4)):
            stem = clause(r)
            text = question(r) if r.random() < 0.5 else f"{stem[0].upper()}{stem[1:]}  _  ."
            problems.append(
                {"answer": letter(r.randint(0, 3)), "options": options(r, 4), "question": text}
            )
        article = " ".join(sentence(r) for _ in range(r.randint(3, 6)))
        out.append({"article": article, "problems": str(problems)})
    return out
